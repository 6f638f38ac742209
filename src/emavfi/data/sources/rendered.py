"""Rendered scenes as a source: a fixed set of large-motion windows with exact ground truth.

Window ``i`` is scene ``i`` of `emavfi.data.gpu_scenes.SceneGenerator`, seeded by the recipe's
seed and ``i`` and rendered on the CPU: a textured background and up to four textured shapes
(blobs and long thin limbs) that move, turn, zoom, deform and occlude each other, with every
foreground layer travelling between ``min_motion`` and ``max_motion`` pixels over the gap (the
background 0.6 of that) and the target at a fixed ``timestep``. The textures are procedural
(colour noise, and flat discs and boxes over it), drawn from the same seed, so nothing is read
from disk and nothing overlaps the photos or clips used for training. They are aperiodic on
purpose: a stripe pattern moving by more than half its period has no single right answer, and
such windows were the worst of every model in a first version of this set. Every scene option is pinned
here, not taken from `SceneOptions`' defaults, so that retuning the training scenes leaves this
set alone; a change to the generator itself changes it (``tests/data/test_rendered.py`` holds its
fingerprint). Frames are rendered when first loaded and the last few scenes are kept.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from emavfi.data.gpu_scenes import TEXTURE_SIZE, SceneGenerator, SceneOptions
from emavfi.data.sources.base import FrameWindow, RenderedFrameRef, register_loader
from emavfi.errors import EmavfiError

TEXTURE_COUNT = 12
TEXTURE_KINDS = ("noise", "cells")
ROLES = ("img0", "target", "img1")


@dataclass(frozen=True)
class RenderRecipe:
    """Everything that fixes the rendered set (sizes and motions in pixels)."""

    count: int
    size: int
    min_motion: float
    max_motion: float
    timestep: float
    seed: int

    def scene_options(self) -> SceneOptions:
        return SceneOptions(
            max_layers=4,
            max_motion=self.max_motion,
            min_motion=self.min_motion,
            static_fraction=0.0,
            static_motion=0.0,
            max_spin=0.35,
            max_zoom=0.25,
            max_deform=10.0,
            limb_fraction=0.4,
            noise=0.0,  # the ground truth stays exact
            timestep=self.timestep,
        )


def open_rendered(
    count: int = 48,
    size: int = 256,
    min_motion: float = 16.0,
    max_motion: float = 64.0,
    timestep: float = 0.5,
    seed: int = 11,
) -> list[FrameWindow]:
    """``count`` windows of ``size`` x ``size`` pixels, one target each at ``timestep``."""
    if count < 1:
        raise EmavfiError(f"rendered scenes: count must be at least 1, got {count}")
    if size < 32:
        raise EmavfiError(f"rendered scenes: size must be at least 32 pixels, got {size}")
    recipe = RenderRecipe(count, size, float(min_motion), float(max_motion), float(timestep), seed)
    recipe.scene_options()  # checks the motion range and the timestep
    windows = []
    for index in range(count):
        img0, target, img1 = (RenderedFrameRef(recipe, index, role) for role in ROLES)
        windows.append(FrameWindow(f"scene{index:03d}", (img0, img1), ((timestep, target),)))
    return windows


def load_rendered_frame(ref: RenderedFrameRef) -> np.ndarray:
    """The referenced frame as ``HxWx3`` uint8 RGB (a copy the caller may edit)."""
    return _render(ref.recipe, ref.index)[ROLES.index(ref.role)].copy()


@functools.lru_cache(maxsize=4)
def _render(recipe: RenderRecipe, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from emavfi.imageio import to_uint8

    generator = SceneGenerator(
        procedural_textures(TEXTURE_COUNT, recipe.seed),
        recipe.scene_options(),
        seed=recipe.seed * 1_000_003 + index,
    )
    scene = generator.sample(1, (recipe.size, recipe.size))
    frames = (scene["img0"][0], scene["targets"][0, 0], scene["img1"][0])
    return tuple(to_uint8(frame) for frame in frames)


def _colour_noise(generator: torch.Generator, side: int) -> torch.Tensor:
    """(3, side, side) float: octaves of bicubic-upsampled random grids, channels mixed."""
    image = torch.zeros(1, 3, side, side)
    for level in range(2, 9):
        cells = 2**level
        grid = torch.rand((1, 3, cells + 1, cells + 1), generator=generator) * 2 - 1
        upsampled = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=True)
        image += upsampled * 0.7 ** (level - 2)
    mix = torch.rand((3, 3), generator=generator) * 2 - 1 + torch.eye(3)
    return torch.einsum("ij,jhw->ihw", mix, image[0])


@functools.lru_cache(maxsize=2)
def procedural_textures(count: int, seed: int, side: int = TEXTURE_SIZE) -> torch.Tensor:
    """``(count, 3, side, side)`` uint8 RGB textures on the CPU, the same for the same seed.

    Kinds alternate: colour noise, and flat discs and boxes over noise (sharp edges).
    """
    textures = []
    for index in range(count):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
        image = _texture(TEXTURE_KINDS[index % len(TEXTURE_KINDS)], generator, side)
        low, high = image.amin(), image.amax()
        textures.append(((image - low) / (high - low) * 255).round().to(torch.uint8))
    return torch.stack(textures)


def _texture(kind: str, generator: torch.Generator, side: int) -> torch.Tensor:
    """One (3, side, side) float texture of ``kind`` (any range; the caller normalises)."""

    def uniform(low: float = 0.0, high: float = 1.0) -> float:
        return low + (high - low) * torch.rand((), generator=generator).item()

    coords = torch.arange(side, dtype=torch.float32)
    image = _colour_noise(generator, side)
    if kind == "cells":
        for _ in range(40):
            cx, cy, radius = uniform(0, side), uniform(0, side), uniform(8, 60)
            colour = torch.rand((3, 1, 1), generator=generator) * 4 - 2
            top, bottom = int(max(cy - radius, 0)), int(min(cy + radius + 1, side))
            left, right = int(max(cx - radius, 0)), int(min(cx + radius + 1, side))
            ys, xs = coords[top:bottom, None] - cy, coords[None, left:right] - cx
            if uniform() < 0.5:
                inside = ys**2 + xs**2 < radius**2
            else:
                inside = (xs.abs() < radius) & (ys.abs() < 0.6 * radius)
            patch = image[:, top:bottom, left:right]
            image[:, top:bottom, left:right] = torch.where(inside, colour + 0.3 * patch, patch)
    return image


register_loader(RenderedFrameRef, load_rendered_frame)
