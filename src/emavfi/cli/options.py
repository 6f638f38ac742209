"""Command-line options shared by several subcommands: each ``add_*`` function defines a group of
options once, and the function next to it reads them back into library keywords."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emavfi.errors import EmavfiError


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """--model: one registry name or checkpoint."""
    parser.add_argument(
        "--model", default=None, help="registry name or checkpoint path (default: ema-cpu)"
    )


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """--device: where the model runs (``emavfi.interpolator.resolve_device`` reads it)."""
    parser.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)"
    )


def add_quiet_argument(parser: argparse.ArgumentParser, help: str = "no progress bar") -> None:
    """-q/--quiet."""
    parser.add_argument("-q", "--quiet", action="store_true", help=help)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model/--device/--scale/--fast/--tta, shared by the subcommands that run a model."""
    add_model_argument(parser)
    add_device_argument(parser)
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
        "first frames of each size (from 512x512 up to 1920x1088; torch otherwise)",
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
