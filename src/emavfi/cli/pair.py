"""``emavfi pair A B -o OUTDIR``: the frames between two images, written as PNGs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from emavfi.cli.options import (
    add_model_arguments,
    add_overwrite_arguments,
    may_overwrite,
    model_options,
)
from emavfi.errors import EmavfiError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image0", type=Path, help="first frame (any format OpenCV reads)")
    parser.add_argument("image1", type=Path, help="second frame, same size")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="output folder for the PNGs"
    )
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--times", help="comma-separated timesteps in (0, 1), e.g. 0.25,0.5,0.75")
    when.add_argument("--num", type=int, help="N evenly spaced frames (t = i/(N+1)); default 1")
    add_model_arguments(parser)
    add_overwrite_arguments(parser)


def parse_times(times: str | None, num: int | None) -> list[float]:
    """``--times``/``--num`` -> sorted list of timesteps, each strictly inside (0, 1)."""
    if times is not None:
        try:
            values = [float(v) for v in times.split(",") if v.strip()]
        except ValueError as exc:
            raise EmavfiError(
                f"--times must be numbers separated by commas, got {times!r}"
            ) from exc
        if not values:
            raise EmavfiError("--times is empty")
    else:
        count = 1 if num is None else num
        if count < 1:
            raise EmavfiError(f"--num must be at least 1, got {count}")
        values = [i / (count + 1) for i in range(1, count + 1)]
    for t in values:
        if not 0 < t < 1:
            raise EmavfiError(f"timestep {t} is outside (0, 1)")
    return sorted(values)


def interpolate_pair(args: argparse.Namespace) -> list[Path]:
    """Write the frames between ``args.image0`` and ``args.image1``; returns their paths."""
    from emavfi.imageio import read_image, write_image
    from emavfi.interpolator import Interpolator

    times = parse_times(args.times, args.num)
    frame0, frame1 = read_image(args.image0), read_image(args.image1)
    if frame0.shape != frame1.shape:
        raise EmavfiError(
            f"images differ in size: {frame0.shape[1]}x{frame0.shape[0]} vs "
            f"{frame1.shape[1]}x{frame1.shape[0]}"
        )
    out = args.output
    if out.exists() and not out.is_dir():
        raise EmavfiError(f"output {out} exists and is not a folder")
    paths = [out / f"frame_{index:03d}_t{t:.4f}.png" for index, t in enumerate(times, start=1)]
    may_overwrite(args, [path for path in paths if path.exists()])
    interp = Interpolator(args.model, **model_options(args))  # a bad model fails before any write
    frames = interp.frames(frame0, frame1, times)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmavfiError(f"cannot create output folder {out}: {exc.strerror}") from exc
    if not os.access(out, os.W_OK):
        raise EmavfiError(f"output folder {out} is not writable")
    for path, frame in zip(paths, frames):
        write_image(path, frame)
    return paths


def run(args: argparse.Namespace) -> int:
    for path in interpolate_pair(args):
        print(path)
    return 0
