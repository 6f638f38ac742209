"""The Middlebury "other" interpolation layout (Baker et al., IJCV 2011).

``<root>/other-data/<Seq>/frame10.png, frame11.png`` are the inputs and
``<root>/other-gt-interp/<Seq>/frame10i11.png`` the ground truth at t = 0.5. Sequences without a
ground-truth frame (the benchmark's withheld ``eval-data``) are not windows.
"""

from __future__ import annotations

from pathlib import Path

from emavfi.data.sources.base import FrameWindow, natural_key, require_dir
from emavfi.errors import EmavfiError


def open_middlebury(path: Path) -> list[FrameWindow]:
    """One window per sequence that has both input frames and the interpolated ground truth."""
    root = require_dir(path, "Middlebury")
    data_dir = require_dir(root / "other-data", "Middlebury input")
    gt_dir = require_dir(root / "other-gt-interp", "Middlebury ground-truth")
    windows = []
    for seq_dir in sorted(gt_dir.iterdir(), key=lambda p: natural_key(p.name)):
        gt = seq_dir / "frame10i11.png"
        frame10 = data_dir / seq_dir.name / "frame10.png"
        frame11 = data_dir / seq_dir.name / "frame11.png"
        if not gt.is_file():
            continue
        for needed in (frame10, frame11):
            if not needed.is_file():
                raise EmavfiError(f"Middlebury input frame missing: {needed}")
        windows.append(FrameWindow(f"{root.name}/{seq_dir.name}", (frame10, frame11), ((0.5, gt),)))
    return windows
