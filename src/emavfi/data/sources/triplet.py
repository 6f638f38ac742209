"""Generic triplet folders: ``<root>/<id>/{frame_00,frame_01_gt,frame_02}.<ext>`` (the UCF101
and DAVIS test sets of the VFI literature) or ``<root>/<id>/{im1,im2,im3}.<ext>``.

The middle frame is the ground truth at t = 0.5.
"""

from __future__ import annotations

from pathlib import Path

from emavfi.data.sources.base import IMAGE_SUFFIXES, FrameWindow, natural_key, require_dir
from emavfi.errors import EmavfiError

NAMINGS = (("frame_00", "frame_01_gt", "frame_02"), ("im1", "im2", "im3"))


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def triplet_in(folder: Path) -> tuple[Path, Path, Path] | None:
    """The (first, middle, last) frames of a triplet folder, or None if it is not one."""
    for naming in NAMINGS:
        found = [_find(folder, stem) for stem in naming]
        if all(found):
            return found[0], found[1], found[2]
    return None


def open_triplet(path: Path) -> list[FrameWindow]:
    """One window per triplet folder under ``path`` (folders of other shapes are ignored)."""
    root = require_dir(path, "triplet")
    windows = []
    for folder in sorted(
        (p for p in root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)
    ):
        triplet = triplet_in(folder)
        if triplet:
            first, middle, last = triplet
            windows.append(
                FrameWindow(f"{root.name}/{folder.name}", (first, last), ((0.5, middle),))
            )
    if not windows:
        raise EmavfiError(
            f"no triplet folders (<id>/frame_00,frame_01_gt,frame_02 or <id>/im1,im2,im3) in {root}"
        )
    return windows
