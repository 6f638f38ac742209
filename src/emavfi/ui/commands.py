"""What the page runs: the CLI's own subcommands, with arguments built from the page's choices.

A choice becomes command-line flags (``2x slow motion`` -> ``--factor 1``), the flags are parsed
by the subcommand's own parser and run through the same library calls as ``emavfi interpolate``
and ``emavfi pair``: the page has no second implementation, and it can show the equivalent
command.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from emavfi.errors import EmavfiError
from emavfi.video.batch import rate_tag

if TYPE_CHECKING:
    from emavfi.ui.jobs import Job
    from emavfi.video.pipeline import VideoResult

CUSTOM_FPS = "custom fps"
# Video targets -> ``emavfi interpolate`` flags. "Nx slow motion": N x the frames at N x the
# frame rate, same duration, so that an editor can play it N times slower.
VIDEO_TARGETS: dict[str, list[str]] = {
    "60 fps": ["--fps", "60"],
    "2x slow motion": ["--factor", "1"],
    "4x slow motion": ["--factor", "3"],
    "8x slow motion": ["--factor", "7"],
    CUSTOM_FPS: [],
}
# Two images -> ``emavfi pair`` flags: the frames that make the pair 2x, 4x, 8x as long.
PAIR_TARGETS: dict[str, list[str]] = {
    "2x (1 new frame)": ["--num", "1"],
    "4x (3 new frames)": ["--num", "3"],
    "8x (7 new frames)": ["--num", "7"],
}
MODES: dict[str, list[str]] = {
    "quality": [],
    "fast (motion at half size)": ["--fast"],
    "best (flip averaging, 3x slower)": ["--tta"],
}
CHECKPOINT_SUFFIXES = (".safetensors", ".pkl", ".pth")
# Output containers that can hold what the input's audio usually is; others become .mp4.
KEPT_SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v")
# Flags the page always adds and does not show in the equivalent command: no progress bar, and
# -y because each job writes into its own new folder, where nothing of the user's can be
# replaced (and a worker thread must never stop to ask on a terminal).
PAGE_FLAGS = ("--quiet", "-y")


def model_choices(checkpoint_dirs: Iterable[Path]) -> list[tuple[str, str]]:
    """``(label, --model value)``: registered models that load by name, then checkpoint files."""
    from emavfi.models.registry import DEFAULT_MODEL, get_spec, list_models

    names = [n for n in list_models() if get_spec(n).weights or not get_spec(n).learned]
    names.sort(key=lambda n: n != DEFAULT_MODEL)
    choices = [(f"{n} (default)" if n == DEFAULT_MODEL else n, n) for n in names]
    for folder in checkpoint_dirs:
        if not Path(folder).is_dir():
            continue
        for path in sorted(Path(folder).iterdir()):
            if path.suffix.lower() in CHECKPOINT_SUFFIXES and path.is_file():
                choices.append((f"{path.name} ({path.parent})", str(path)))
    return choices


def device_choices() -> list[str]:
    """``auto``, ``cpu`` and the accelerators present."""
    import torch

    devices = ["auto", "cpu"]
    devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """What the page asks for: ``emavfi interpolate`` on a video or ``emavfi pair`` on two
    images, with the page's choices. Bad choices raise EmavfiError when it is made."""

    command: str  # "interpolate" or "pair"
    inputs: tuple[Path, ...]
    target: str
    model: str
    mode: str
    device: str
    custom_fps: float | None = None

    @classmethod
    def video(cls, video, target, custom_fps, model, mode, device) -> JobRequest:
        if not video:
            raise EmavfiError("drop a video first")
        return cls("interpolate", (Path(video),), target, model, mode, device, custom_fps)

    @classmethod
    def pair(cls, image0, image1, target, model, mode, device) -> JobRequest:
        if not (image0 and image1):
            raise EmavfiError("drop both images first")
        return cls("pair", (Path(image0), Path(image1)), target, model, mode, device)

    def __post_init__(self) -> None:
        self.argv(Path("."))  # checks the choices before anything is queued

    def argv(self, folder: Path) -> list[str]:
        """The subcommand's arguments, writing into ``folder``."""
        if self.mode not in MODES:
            raise EmavfiError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        settings = ["--model", self.model, *MODES[self.mode], "--device", self.device]
        targets = VIDEO_TARGETS if self.command == "interpolate" else PAIR_TARGETS
        if self.target not in targets:
            raise EmavfiError(f"unknown target {self.target!r}; choose one of {', '.join(targets)}")
        if self.command == "pair":
            frames = folder / "frames"
            return [
                *map(str, self.inputs),
                "-o",
                str(frames),
                *targets[self.target],
                *settings,
                "-y",
            ]
        flags = targets[self.target]
        if self.target == CUSTOM_FPS:
            if not self.custom_fps:
                raise EmavfiError("enter the custom frame rate (frames per second)")
            flags = ["--fps", f"{self.custom_fps:g}"]
        video = self.inputs[0]
        fps = float(flags[1]) if flags[0] == "--fps" else None
        tag = rate_tag(fps, None if fps else int(flags[1]))
        suffix = video.suffix.lower() if video.suffix.lower() in KEPT_SUFFIXES else ".mp4"
        output = folder / f"{video.stem}_{tag}{suffix}"
        return [str(video), "-o", str(output), *flags, *settings, *PAGE_FLAGS]

    def shown(self, folder: Path) -> str:
        """The equivalent command line, with file names instead of the server's paths."""
        words = [Path(w).name if "/" in w else w for w in self.argv(folder) if w not in PAGE_FLAGS]
        return shlex.join(["emavfi", self.command, *words])

    def run(self, job: Job) -> VideoResult | tuple[list[Path], Path]:
        """The job's work: the subcommand, writing into the job's folder."""
        if self.command == "interpolate":
            return run_interpolate(self.argv(job.folder), job.report)
        return run_pair(self.argv(job.folder))


def parse(command: str, argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed by the parser of ``emavfi COMMAND`` (``interpolate`` or ``pair``: the page
    runs those two; their modules, not ``cli.main``, which imports ``cli.ui``, which imports us)."""
    from emavfi.cli import interpolate, pair

    parser = argparse.ArgumentParser(prog=f"emavfi {command}")
    {"interpolate": interpolate, "pair": pair}[command].add_arguments(parser)
    return parser.parse_args(argv)


def run_interpolate(argv: list[str], on_progress: Callable[[int, int], None]) -> VideoResult:
    """``emavfi interpolate ARGV``, calling ``on_progress(done, total)`` (which may cancel)."""
    from emavfi.cli.interpolate import interpolator_factory, video_options
    from emavfi.video.pipeline import interpolate_video

    args = parse("interpolate", argv)
    options = dataclasses.replace(video_options(args), on_progress=on_progress)
    return interpolate_video(
        args.inputs[0], args.output, options=options, make_interpolator=interpolator_factory(args)
    )


def run_pair(argv: list[str]) -> tuple[list[Path], Path]:
    """``emavfi pair ARGV``: the new frames' paths and a zip of them beside their folder."""
    import zipfile

    from emavfi.cli.pair import interpolate_pair

    args = parse("pair", argv)
    frames = interpolate_pair(args)
    archive = args.output.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in frames:
            bundle.write(path, path.name)
    return frames, archive


def user_message(message: str, paths: Iterable[Path | str]) -> str:
    """An error message with the server's temporary paths shortened to the files' names."""
    for path in sorted((str(p) for p in paths), key=len, reverse=True):
        message = message.replace(path, Path(path).name)
    return message
