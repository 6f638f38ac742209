"""The common vocabulary of every source: frame references, windows, frame loading.

A *window* is two input frames plus one or more ground-truth frames between them, each with its
timestep in (0, 1). A frame reference is a `Path` to an image, a `VideoFrameRef` naming a frame
of a video file or a `RenderedFrameRef` naming a frame of a rendered scene; `load_frame` turns
any of them into an ``HxWx3`` uint8 RGB array.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emavfi.errors import EmavfiError
from emavfi.imageio import (  # noqa: F401 - the sources' vocabulary: image folders too
    IMAGE_SUFFIXES,
    frame_number,
    list_images,
    natural_key,
    read_image,
)


@dataclass(frozen=True)
class VideoFrameRef:
    """Frame ``index`` (0-based, in decoding order) of the video file ``path``."""

    path: Path
    index: int


@dataclass(frozen=True)
class RenderedFrameRef:
    """Frame ``role`` (``img0``, ``target`` or ``img1``) of scene ``index`` rendered from
    ``recipe`` (a `emavfi.data.sources.rendered.RenderRecipe`)."""

    recipe: Any
    index: int
    role: str


FrameRef = Path | VideoFrameRef | RenderedFrameRef


@dataclass(frozen=True)
class FrameWindow:
    """Two input frames and the ground truth between them.

    ``targets`` holds ``(timestep, frame)`` pairs with timesteps in (0, 1), 0 being ``inputs[0]``.
    """

    name: str
    inputs: tuple[FrameRef, FrameRef]
    targets: tuple[tuple[float, FrameRef], ...]


# How to decode each kind of reference that is not an image path: each source module registers
# its own (``register_loader``) when it is imported; ``emavfi.data.sources`` imports them all.
_LOADERS: dict[type, Callable[[Any], np.ndarray]] = {}


def register_loader(ref_type: type, loader: Callable[[Any], np.ndarray]) -> None:
    """Make ``load_frame`` decode references of ``ref_type`` with ``loader``."""
    _LOADERS[ref_type] = loader


def load_frame(ref: FrameRef) -> np.ndarray:
    """Decode one frame: ``HxWx3`` uint8 RGB. Raises EmavfiError naming the file if it fails."""
    loader = _LOADERS.get(type(ref))
    if loader is not None:
        return loader(ref)
    return read_image(Path(ref))


def require_dir(path: Path, what: str) -> Path:
    """``path`` as a Path, or EmavfiError naming it if it is not a folder."""
    path = Path(path)
    if not path.is_dir():
        raise EmavfiError(f"{what} folder not found: {path}")
    return path


def gap_windows(name: str, frames: list[FrameRef], gap: int, stride: int = 1) -> list[FrameWindow]:
    """Windows over an evenly spaced frame sequence.

    Inputs are ``gap`` frames apart (``gap=2``: triplets); the frames between are targets at
    ``i / gap``. A new window starts every ``stride`` frames.
    """
    if gap < 2:
        raise EmavfiError(f"gap must be at least 2 (one frame between the inputs), got {gap}")
    if stride < 1:
        raise EmavfiError(f"stride must be at least 1, got {stride}")
    windows = []
    for start in range(0, len(frames) - gap, stride):
        targets = tuple((i / gap, frames[start + i]) for i in range(1, gap))
        windows.append(
            FrameWindow(f"{name}/{start}", (frames[start], frames[start + gap]), targets)
        )
    return windows
