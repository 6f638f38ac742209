"""The original project's inference script, as a thin shim over ``emavfi interpolate``.

    python inference.py --input_video input.mp4 --output_video output.mp4 --model_path best.pth \
        --target_fps 60 --interpolation_factor 1 --frame_interval 1 --device cuda

With no arguments it interpolates the built-in sample clip (2x) with the default model and says
where it wrote the result. If both --target_fps and --interpolation_factor are given, the fps wins.
An output that exists is replaced only with -y (on a terminal you are asked).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emavfi.cli.main import main as emavfi_main
from emavfi.cli.options import add_device_argument

DEFAULT_OUTPUT = "outputs/inference_output.mp4"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Video frame interpolation (EMA-VFI); see `emavfi interpolate -h`."
    )
    parser.add_argument(
        "--input_video", default=None, help="input video (default: the built-in sample clip)"
    )
    parser.add_argument(
        "--output_video",
        default=DEFAULT_OUTPUT,
        help=f"output video path (default {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--model_path",
        default=None,
        help="checkpoint (.safetensors or published .pkl) or model name",
    )
    parser.add_argument(
        "--target_fps",
        type=float,
        default=None,
        help="output frames per second (wins over the factor)",
    )
    parser.add_argument(
        "--interpolation_factor",
        type=int,
        default=None,
        help="frames inserted between each pair of input frames (default 1)",
    )
    parser.add_argument(
        "--frame_interval", type=int, default=1, help="process every n-th input frame (default 1)"
    )
    add_device_argument(parser)
    parser.add_argument("-y", "--overwrite", action="store_true", help="replace an existing output")
    return parser


def to_emavfi_argv(args: argparse.Namespace) -> list[str]:
    """The original flags -> ``emavfi interpolate`` arguments."""
    if args.input_video is None:
        from emavfi.cli.demo import asset

        args.input_video = str(asset("sample_clip.mp4"))
    if args.output_video == DEFAULT_OUTPUT:
        Path(DEFAULT_OUTPUT).parent.mkdir(parents=True, exist_ok=True)
    argv = [
        "interpolate",
        args.input_video,
        "-o",
        args.output_video,
        "--frame-interval",
        str(args.frame_interval),
        "--device",
        args.device,
    ]
    if args.model_path is not None:
        argv += ["--model", args.model_path]
    if args.target_fps is not None:
        argv += ["--fps", str(args.target_fps)]
    if args.interpolation_factor is not None:
        argv += ["--factor", str(args.interpolation_factor)]
    if args.overwrite:
        argv.append("-y")
    return argv


# emavfi interpolate's flags as this script names them, for its error lines
FLAG_NAMES = {
    "--fps": "--target_fps",
    "--factor": "--interpolation_factor",
    "--frame-interval": "--frame_interval",
    "--model": "--model_path",
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return emavfi_main(to_emavfi_argv(args), prog="inference.py", flag_names=FLAG_NAMES)


if __name__ == "__main__":
    sys.exit(main())
