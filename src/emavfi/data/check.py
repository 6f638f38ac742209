"""Validate a folder of scene folders (``<root>[/<split>]/<scene>/<numbered frames>``).

Every problem is collected with its file, never stopping at the first: images that do not
decode, sizes that differ within a scene, gaps or duplicates in the numbering, frames without a
number, scenes too short for a triplet, scene folders with no image at all. Counts of scenes
and frames are given per split.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from emavfi.data.sources.base import (
    frame_number,
    list_images,
    natural_key,
    read_image,
    require_dir,
)
from emavfi.data.sources.scenes import scene_folders
from emavfi.errors import EmavfiError

MIN_FRAMES = 3


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class CheckReport:
    """``problems`` in path order; ``counts[split] = {"scenes": n, "frames": m}``."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _numbering_problems(frames: list[Path]) -> list[Problem]:
    problems = [
        Problem(f, "no frame number in the file name") for f in frames if frame_number(f) is None
    ]
    numbered = [(frame_number(f), f) for f in frames if frame_number(f) is not None]
    seen: dict[int, Path] = {}
    for number, frame in numbered:
        if number in seen:
            problems.append(
                Problem(frame, f"frame number {number} also used by {seen[number].name}")
            )
        seen.setdefault(number, frame)
    ordered = sorted(seen.items())
    for (number, frame), (next_number, _) in pairwise(ordered):
        if next_number != number + 1:
            missing = (
                f"{number + 1}" if next_number == number + 2 else f"{number + 1}-{next_number - 1}"
            )
            problems.append(Problem(frame, f"numbering gap after this frame: {missing} missing"))
    return problems


def check_scene(folder: Path) -> tuple[list[Problem], int]:
    """The problems of one scene folder and its frame count."""
    frames = list_images(folder)
    problems = []
    sizes: dict[Path, tuple[int, int]] = {}
    for frame in frames:
        try:
            image = read_image(frame)
        except EmavfiError as exc:  # the reason, without the path that Problem gives
            problems.append(Problem(frame, str(exc).replace(str(frame), "").strip(" :")))
            continue
        sizes[frame] = (image.shape[1], image.shape[0])
    if sizes:
        (width, height), _ = Counter(sizes.values()).most_common(1)[0]
        for frame, (w, h) in sizes.items():
            if (w, h) != (width, height):
                problems.append(
                    Problem(frame, f"size {w}x{h} differs from the scene's {width}x{height}")
                )
    problems += _numbering_problems(frames)
    if len(frames) < MIN_FRAMES:
        problems.append(
            Problem(folder, f"only {len(frames)} frame(s); a triplet needs {MIN_FRAMES}")
        )
    return problems, len(frames)


def _empty_folders(folder: Path, depth: int) -> list[Path]:
    """Folders down to ``depth`` levels under ``folder`` with no image in or below them."""
    found = []
    children = (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for child in sorted(children, key=lambda p: natural_key(p.name)):
        if not scene_folders(child, depth - 1):
            found.append(child)
        elif depth > 1 and not list_images(child):
            found += _empty_folders(child, depth - 1)
    return found


def check_data_dir(root: str | Path) -> CheckReport:
    """Check every scene under ``root`` (scenes directly, or in split folders)."""
    root = require_dir(Path(root), "data")
    report = CheckReport(root)
    scenes = scene_folders(root)
    if not scenes:
        report.problems.append(Problem(root, "no scene folder with images found"))
    report.problems += [
        Problem(folder, "empty scene folder (no images)") for folder in _empty_folders(root, 2)
    ]
    for folder in scenes:
        parts = folder.relative_to(root).parts
        split = parts[0] if len(parts) > 1 else "."
        problems, count = check_scene(folder)
        report.problems += problems
        counts = report.counts.setdefault(split, {"scenes": 0, "frames": 0})
        counts["scenes"] += 1
        counts["frames"] += count
    report.problems.sort(key=lambda p: str(p.path))
    return report
