"""Many inputs in one run: which files, what each output is called, and what became of each.

An input folder is a folder of videos when it holds a video file (any of ``VIDEO_SUFFIXES`` or
``RAW_SUFFIXES``); otherwise it is one image-sequence input, as for a single run. Outputs are
named after their input and the rate asked for (``NAME.60fps.mp4``, ``NAME.2x.mp4``); an output
that exists is taken as done and skipped unless redone on purpose (``-y``). One input that fails
is reported and the others go on.
"""

from __future__ import annotations

import logging
import re
import time as clock
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from emavfi.errors import EmavfiError
from emavfi.video.writer import VIDEO_SUFFIXES

log = logging.getLogger(__name__)

RAW_SUFFIXES = (
    ".264",
    ".h264",
    ".265",
    ".h265",
    ".hevc",
    ".m2ts",
    ".mts",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".flv",
    ".3gp",
    ".ogv",
)  # read, never written: their outputs are .mp4
DEFAULT_SUFFIX = ".mp4"
# An output name of ours (``a.2x.mp4``, ``a.59.94fps.mkv``): found in a folder, it is not an input.
OUTPUT_TAG = re.compile(r"\.(\d+x|\d+(\.\d+)?fps)$")


@dataclass(frozen=True)
class Job:
    """One input and the output it makes."""

    input: Path
    output: Path


@dataclass
class Summary:
    """What a batch did: outputs made, skipped (already there), failures ``(input, message)``."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0


def rate_tag(fps: float | Fraction | None, factor: int | None) -> str:
    """``60fps`` for a target rate, ``2x`` for a frame multiplier (``factor`` n: (n+1)x)."""
    if fps is not None:
        return f"{float(fps):g}fps"
    return f"{(1 if factor is None else factor) + 1}x"


def output_name(input_path: Path, fps: float | None, factor: int | None) -> str:
    """``NAME.TAG.SUFFIX``: the input's container when we write it, else MP4."""
    if input_path.is_dir():  # a folder of images
        return f"{input_path.name}.{rate_tag(fps, factor)}{DEFAULT_SUFFIX}"
    suffix = input_path.suffix.lower()
    kept = suffix if suffix in VIDEO_SUFFIXES else DEFAULT_SUFFIX
    return f"{input_path.stem}.{rate_tag(fps, factor)}{kept}"


def is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES + RAW_SUFFIXES


def is_video_folder(path: Path) -> bool:
    """A folder of videos (a batch), as opposed to a folder of images (one input)."""
    return path.is_dir() and any(is_video_file(p) for p in path.iterdir())


def _videos_in(folder: Path, recursive: bool) -> list[tuple[Path, Path]]:
    """``(video, path relative to folder)`` for the videos in ``folder``, ours left out."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    videos = [
        p for p in found if is_video_file(p) and not OUTPUT_TAG.search(p.stem) and p.name[0] != "."
    ]
    return [(p, p.relative_to(folder)) for p in sorted(videos)]


def plan_jobs(
    inputs: Iterable[Path],
    output: Path | None,
    fps: float | None,
    factor: int | None,
    recursive: bool = False,
) -> tuple[list[Job], bool]:
    """The jobs for ``inputs`` (files and folders) and whether this is a batch (more than one
    input, or a folder of videos).

    A single input keeps an explicit ``output`` as given (a file or an image folder); otherwise
    ``output`` is the folder the outputs go to (the tree below each input folder is kept), and
    without one each output goes next to its input. Bad paths raise EmavfiError.
    """
    inputs = list(inputs)
    for path in inputs:
        if not path.exists():
            raise EmavfiError(f"input not found: {path}")
    found: list[tuple[Path, Path]] = []
    for path in inputs:
        if is_video_folder(path):
            found += _videos_in(path, recursive)
        else:
            found.append((path, Path(path.name)))
    batch = len(inputs) > 1 or any(is_video_folder(p) for p in inputs)
    if not found:
        raise EmavfiError(f"no videos in {', '.join(map(str, inputs))}")
    if not batch and output is not None:
        return [Job(inputs[0], output)], False
    if output is not None and (output.is_file() or output.suffix.lower() in VIDEO_SUFFIXES):
        raise EmavfiError(f"with several inputs, -o is the folder they go to, not {output}")
    jobs = []
    for video, relative in found:
        folder = video.parent if output is None else output / relative.parent
        jobs.append(Job(video, folder / output_name(video, fps, factor)))
    _check_distinct(jobs)
    return jobs, batch


def _check_distinct(jobs: list[Job]) -> None:
    seen: dict[Path, Path] = {}
    for job in jobs:
        key = job.output.resolve()
        if key in seen:
            raise EmavfiError(
                f"{seen[key]} and {job.input} would both write {job.output}: give them separately"
            )
        seen[key] = job.input


def run_jobs(jobs: list[Job], convert: Callable[[Job], object], redo: bool) -> Summary:
    """``convert(job)`` for each job whose output is missing (all of them when ``redo``); an
    Exception from one job is logged as one line and recorded, and the next one starts."""
    summary = Summary()
    started = clock.perf_counter()
    for number, job in enumerate(jobs, 1):
        if job.output.exists() and not redo:
            log.info("[%d/%d] %s exists: skipped (-y redoes it)", number, len(jobs), job.output)
            summary.skipped.append(job.output)
            continue
        log.info("[%d/%d] %s -> %s", number, len(jobs), job.input, job.output)
        try:
            job.output.parent.mkdir(parents=True, exist_ok=True)
            convert(job)
        except Exception as exc:  # noqa: BLE001 - one bad input must not stop the others
            message = str(exc) if isinstance(exc, EmavfiError) else f"{type(exc).__name__}: {exc}"
            log.error("%s failed: %s", job.input, message)
            summary.failed.append((job.input, message))
        else:
            summary.done.append(job.output)
    summary.seconds = clock.perf_counter() - started
    return summary
