"""Scene folders, the original project's layout: ``<root>/<scene>/<numbered frames>``.

Frames are PNG or JPEG with any zero-padded numbering (``frame0001.png``, ``00017.jpg``), ordered
by their number. ``root`` may also be a folder of splits (``data/processed`` with ``train/`` and
``val/``): every folder up to two levels down that directly holds images is a scene. Windows
have inputs ``gap`` frames apart and targets at i/gap (``gap=2``: triplets), one every
``stride`` frames.
"""

from __future__ import annotations

from pathlib import Path

from emavfi.data.sources.base import FrameWindow, gap_windows, list_images, natural_key, require_dir
from emavfi.errors import EmavfiError


def scene_folders(root: Path, depth: int = 2) -> list[Path]:
    """Folders under ``root`` (``root`` itself included) that directly hold image files."""
    found = [root] if list_images(root) else []
    if depth > 0:
        for child in sorted(
            (p for p in root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)
        ):
            found += scene_folders(child, depth - 1)
    return found


def open_scenes(path: Path, gap: int = 2, stride: int = 1) -> list[FrameWindow]:
    """Windows of every scene under ``path`` (scenes shorter than ``gap + 1`` frames give none)."""
    root = require_dir(path, "scene")
    windows: list[FrameWindow] = []
    for folder in scene_folders(root):
        relative = folder.relative_to(root).as_posix()
        name = root.name if relative == "." else f"{root.name}/{relative}"
        windows += gap_windows(name, list_images(folder), gap, stride)
    if not windows:
        raise EmavfiError(f"no scene folder with at least {gap + 1} frames in {root}")
    return windows
