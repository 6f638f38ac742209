"""``emavfi pair A B -o OUTDIR``: the frames between two images, written as PNGs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from emavfi.errors import EmavfiError


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model/--device/--scale/--fast/--tta, shared by the subcommands that run a model."""
    parser.add_argument(
        "--model", default=None, help="registry name or checkpoint path (default: ema-cpu)"
    )
    parser.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)"
    )
    add_scale_arguments(parser)
    parser.add_argument(
        "--tta", action="store_true", help="flip test-time augmentation (3x slower)"
    )
    add_runtime_arguments(parser)


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """--precision/--backend (read back with ``runtime_options``)."""
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "fp16", "bf16"],
        help="auto: fp16 autocast on CUDA, bf16 on CPUs with native bfloat16 (AVX512-BF16, "
        "AMX), fp32 elsewhere; warping grids stay fp32",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "onnxruntime", "openvino"],
        help="run the network in PyTorch or its ONNX export in ONNX Runtime / OpenVINO (CPU; "
        "exported once into ~/.cache/emavfi). auto: the fastest one installed, timed on the "
        "first frames of each size (from 512x512 up; torch below)",
    )


def runtime_options(args: argparse.Namespace) -> dict:
    """The Interpolator's ``precision`` and ``backend``."""
    return {"precision": args.precision, "backend": args.backend}


def add_scale_arguments(parser: argparse.ArgumentParser) -> None:
    """--scale/--fast (read back with ``scale_options``); engines ignore both."""
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help="estimate flow at this fraction of the size (default 1; 0.5 with --fast): EMA "
        "models refine at full size; RIFE checkpoints take 1, 0.5 or 0.25 (Practical-RIFE's "
        "scale: every block at that fraction; 0.5 for 4K)",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="run the whole network at --scale; only the final warp and blend at full size "
        "(EMA: about 3x faster at 720p, slightly softer; RIFE works that way already, so for "
        "it --fast just means --scale 0.5)",
    )


def scale_options(args: argparse.Namespace) -> dict:
    """The Interpolator's ``scale`` and ``refine_at_scale`` (``--fast`` alone: scale 0.5)."""
    scale = args.scale if args.scale is not None else (0.5 if args.fast else 1.0)
    return {"scale": scale, "refine_at_scale": args.fast}


def add_overwrite_arguments(parser: argparse.ArgumentParser) -> None:
    """-y/-n, ffmpeg's flags for outputs that exist (read back with ``may_overwrite``)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-y", "--overwrite", action="store_true", help="overwrite outputs that exist"
    )
    group.add_argument(
        "-n", "--no-overwrite", action="store_true", help="never overwrite (exit 2 instead)"
    )


def may_overwrite(args: argparse.Namespace, existing: list[Path]) -> bool:
    """ffmpeg's rule for outputs that exist: -y overwrites, -n never does; with neither, ask on a
    terminal and refuse (one line) otherwise. True when there is nothing to ask about or yes."""
    if not existing or args.overwrite:
        return True
    names = str(existing[0]) + (f" and {len(existing) - 1} more" if len(existing) > 1 else "")
    if args.no_overwrite:
        raise EmavfiError(f"{names} exists (-n: not overwritten)")
    if not sys.stdin.isatty():
        raise EmavfiError(f"{names} exists (-y overwrites it)")
    answer = input(f"{names} exists. Overwrite? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise EmavfiError(f"{names} exists: not overwritten")
    return True


def model_options(args: argparse.Namespace) -> dict:
    """The Interpolator keywords of ``add_model_arguments``'s options."""
    return {"device": args.device, "tta": args.tta, **scale_options(args), **runtime_options(args)}


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
