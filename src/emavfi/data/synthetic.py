"""Synthetic scenes with exact ground truth, in the spirit of FlyingChairs / FlyingThings but for
interpolation: the frame at any t in [0, 1] and the exact backward flows of the visible surface.

A scene is a textured background under a smooth camera motion (rotation, zoom, translation and a
perspective tilt, each a quadratic function of t, so paths accelerate) and several foreground
layers: photo textures cut by random soft-edged shapes, each moving, rotating and zooming along
its own path, drawn back to front so that they occlude and reveal each other. Every layer maps
its texture to the screen by a homography ``H(t)``, so a screen point ``x`` at time t shows the
texture point ``H(t)^-1 x``, which is at ``H(s) H(t)^-1 x`` at time s: that is the flow.

Photometric effects (a brightness ramp, motion blur, sensor noise) are drawn at random; blurred
samples get ``flow_valid = 0`` (their flow is that of the exposure's centre only). Soft shape
edges, where two surfaces mix, are also marked invalid. Flows follow ARCHITECTURE.md: pixels,
channels 0-1 from the target to frame 0, 2-3 to frame 1, x before y, pixel centres at integers
(``warp(img0, flow[:2])`` with ``align_corners=True`` reproduces the target where the surface is
visible in frame 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emavfi.data.scene_render import (
    Layer,
    MotionPath,
    Render,
    Scene,
    SyntheticSample,
    backward_flows,
    render_frame,
    render_layers,
    render_sample,
    visibility,
)
from emavfi.data.sources.base import IMAGE_SUFFIXES, read_image, require_dir
from emavfi.errors import EmavfiError

__all__ = [
    "Layer",
    "MotionPath",
    "Render",
    "Scene",
    "SyntheticConfig",
    "SyntheticSample",
    "SyntheticScenes",
    "TextureBank",
    "backward_flows",
    "random_shape",
    "render_frame",
    "render_layers",
    "render_sample",
    "visibility",
]


_REFERENCE_MOTION = 0.25  # the default max_motion, for which the rotation/zoom ranges were set


@dataclass(frozen=True)
class SyntheticConfig:
    """How scenes are drawn. ``max_motion`` is the largest layer displacement between frame 0
    and frame 1 as a fraction of the crop's larger side; rotation, zoom and perspective change
    scale with it (their ranges are those of the default 0.25 times ``max_motion / 0.25``), so a
    small value gives nearly static scenes."""

    size: tuple[int, int] = (256, 256)  # (height, width)
    layers: tuple[int, int] = (2, 5)  # foreground layer count, inclusive range
    max_motion: float = 0.25
    timesteps: tuple[float, ...] | None = None  # None: uniform in [1/16, 15/16]
    perspective: bool = True
    brightness_prob: float = 0.3
    blur_prob: float = 0.1
    noise_prob: float = 0.3


class TextureBank:
    """The images of a folder, decoded on first use and kept (longest side at most ``max_side``)."""

    def __init__(self, folder: str | Path, max_side: int = 640) -> None:
        self.folder = require_dir(Path(folder), "texture")
        self.paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise EmavfiError(f"no texture images in {self.folder}")
        self.max_side = max_side
        self._images: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int) -> np.ndarray:
        """Texture ``index`` as hxwx3 uint8 RGB."""
        if index not in self._images:
            image = read_image(self.paths[index])
            scale = self.max_side / max(image.shape[:2])
            if scale < 1:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            self._images[index] = image
        return self._images[index]


def random_shape(rng: np.random.Generator, side: int) -> np.ndarray:
    """A soft-edged random shape (star polygons and ellipses): side x side float32 in [0, 1]."""
    canvas = np.zeros((side, side), np.uint8)
    centre, sub = side / 2.0, 16  # fillPoly's shift=4: 1/16-pixel vertices
    for _ in range(int(rng.integers(1, 3))):
        if rng.random() < 0.6:
            count = int(rng.integers(3, 10))
            angles = np.sort(rng.uniform(0, 2 * np.pi, count))
            radii = rng.uniform(0.25, 0.42, count) * side
            points = np.stack(
                [centre + radii * np.cos(angles), centre + radii * np.sin(angles)], axis=1
            )
            cv2.fillPoly(
                canvas, [np.round(points * sub).astype(np.int32)], 255, cv2.LINE_AA, shift=4
            )
        else:
            axes = (int(rng.uniform(0.15, 0.36) * side), int(rng.uniform(0.15, 0.36) * side))
            offset = rng.uniform(-0.06, 0.06, 2) * side
            cv2.ellipse(
                canvas,
                (int(centre + offset[0]), int(centre + offset[1])),
                axes,
                float(rng.uniform(0, 180)),
                0,
                360,
                255,
                -1,
                cv2.LINE_AA,
            )
    alpha = canvas.astype(np.float32) / 255.0
    return cv2.GaussianBlur(alpha, (0, 0), float(rng.uniform(0.5, 2.0)))


def _displacement(
    rng: np.random.Generator, limit: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Velocity and acceleration whose displacement over [0, 1] stays within ``limit`` pixels."""
    direction = rng.uniform(0, 2 * np.pi)
    speed = limit * rng.random() ** 1.5  # small motions more often than large ones
    velocity = np.array([np.cos(direction), np.sin(direction)]) * speed
    acceleration = rng.normal(0.0, 0.3 * limit, 2)
    reach = np.linalg.norm(velocity + 0.5 * acceleration)
    if reach > limit:
        velocity, acceleration = velocity * limit / reach, acceleration * limit / reach
    return tuple(velocity), tuple(acceleration)


class SyntheticScenes:
    """An infinite seeded stream of scenes: ``sample(index)`` is the same for the same seed."""

    def __init__(
        self,
        textures: str | Path | TextureBank,
        config: SyntheticConfig = SyntheticConfig(),
        seed: int = 0,
    ) -> None:
        self.textures = textures if isinstance(textures, TextureBank) else TextureBank(textures)
        self.config = config
        self.seed = seed

    def sample(
        self, index: int, targets: int = 1, with_visibility: bool = False
    ) -> SyntheticSample:
        """Sample ``index`` of this stream, with ``targets`` target frames."""
        return self.sample_with(np.random.default_rng([self.seed, index]), targets, with_visibility)

    def sample_with(
        self, rng: np.random.Generator, targets: int = 1, with_visibility: bool = False
    ) -> SyntheticSample:
        """A sample drawn from ``rng``."""
        scene = self.scene(rng)
        if self.config.timesteps:
            timesteps = [
                self.config.timesteps[i % len(self.config.timesteps)] for i in range(targets)
            ]
        else:
            timesteps = list(rng.uniform(1 / 16, 15 / 16, targets))
        return render_sample(scene, timesteps, rng, with_visibility)

    def scene(self, rng: np.random.Generator) -> Scene:
        """A random scene: background, foreground layers and photometric effects."""
        config = self.config
        layers = [self._background(rng)]
        low, high = config.layers
        layers += [self._foreground(rng) for _ in range(int(rng.integers(low, high + 1)))]
        gain0 = np.ones(3)
        gain1 = np.ones(3)
        if rng.random() < config.brightness_prob:
            gain0 = 1.0 + rng.uniform(-0.15, 0.15) + rng.uniform(-0.03, 0.03, 3)
            gain1 = gain0 * (1.0 + rng.uniform(-0.15, 0.15))
        blur = float(rng.uniform(0.1, 0.5)) if rng.random() < config.blur_prob else 0.0
        noise = float(rng.uniform(0.003, 0.02)) if rng.random() < config.noise_prob else 0.0
        return Scene(tuple(layers), config.size, (gain0, gain1), blur, noise)

    def _texture(self, rng: np.random.Generator, min_side: int) -> np.ndarray:
        texture = self.textures.get(int(rng.integers(len(self.textures))))
        if min(texture.shape[:2]) < min_side:
            scale = min_side / min(texture.shape[:2])
            texture = cv2.resize(texture, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        return texture

    @property
    def _change(self) -> float:
        """How much rotation, zoom and tilt change relative to the default ``max_motion``."""
        return self.config.max_motion / _REFERENCE_MOTION

    def _tilt(self, rng: np.random.Generator, spread: float, drift: float, length: float):
        """A layer's perspective tilt and its change (``MotionPath.tilt``), relative to its
        ``length`` in pixels; none unless ``perspective``."""
        if not self.config.perspective:
            return ((0.0, 0.0), (0.0, 0.0))
        return (
            tuple(rng.uniform(-spread, spread, 2) / length),
            tuple(rng.uniform(-drift, drift, 2) * self._change / length),
        )

    def _background(self, rng: np.random.Generator) -> Layer:
        height, width = self.config.size
        change = self._change
        longest = max(height, width)
        texture = self._texture(rng, int(1.2 * longest))
        limit = 0.7 * self.config.max_motion * longest
        velocity, acceleration = _displacement(rng, limit)
        offset = rng.uniform(-0.1, 0.1, 2) * longest
        tilt = self._tilt(rng, 0.5, 0.4, longest)
        motion = MotionPath(
            anchor=(texture.shape[1] / 2.0, texture.shape[0] / 2.0),
            position=((width / 2.0 + offset[0], height / 2.0 + offset[1]), velocity, acceleration),
            angle=(
                rng.uniform(-np.pi, np.pi),
                rng.uniform(-0.15, 0.15) * change,
                rng.uniform(-0.1, 0.1) * change,
            ),
            scale=(rng.uniform(0.9, 1.4), rng.uniform(-0.15, 0.15) * change),
            tilt=tilt,
        )
        return Layer(texture, motion)

    def _foreground(self, rng: np.random.Generator) -> Layer:
        height, width = self.config.size
        change = self._change
        side = max(8, int(rng.uniform(0.25, 0.6) * min(height, width)))
        source = self._texture(rng, side)
        top = int(rng.integers(source.shape[0] - side + 1))
        left = int(rng.integers(source.shape[1] - side + 1))
        texture = np.ascontiguousarray(source[top : top + side, left : left + side])
        velocity, acceleration = _displacement(rng, self.config.max_motion * max(height, width))
        tilt = self._tilt(rng, 0.3, 0.3, side)
        motion = MotionPath(
            anchor=(side / 2.0, side / 2.0),
            position=(
                (rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height),
                velocity,
                acceleration,
            ),
            angle=(
                rng.uniform(-np.pi, np.pi),
                rng.uniform(-0.6, 0.6) * change,
                rng.uniform(-0.3, 0.3) * change,
            ),
            scale=(rng.uniform(0.7, 1.3), rng.uniform(-0.25, 0.25) * change),
            tilt=tilt,
        )
        alpha = np.round(random_shape(rng, side) * 255).astype(np.uint8)
        return Layer(np.dstack([texture, alpha]), motion)
