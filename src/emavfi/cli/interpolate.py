"""``emavfi interpolate INPUT -o OUTPUT``: a smoother video (a target fps or n frames per pair)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from emavfi.cli.pair import (
    add_model_arguments,
    add_overwrite_arguments,
    may_overwrite,
    model_options,
)
from emavfi.errors import EmavfiError

if TYPE_CHECKING:
    from emavfi.interpolator import Interpolator
    from emavfi.video.pipeline import VideoOptions

EPILOG = """\
timing:
  --fps F      exactly F frames per second over the input's duration, any ratio (24->60,
               30->48, 60->24); each output frame is synthesised at its exact time t between
               the two input frames around it: round(duration x F) frames in all.
  --factor n   inserts n frames between each pair of input frames: (n+1)x the frames, same
               duration. --factor 1 doubles the rate (24 -> 48 fps), --factor 3 quadruples it.
  --multi N    multiplies the frames by N (RIFE tools' convention): --multi 2 is --factor 1
               (2x), --multi 4 is --factor 3 (4x). Use one of the two (if both, they must agree).
  If --fps and a factor are given, --fps wins. None of them: --factor 1 (2x).
  --frame-interval k   processes every k-th input frame (the duration stays the same).
Audio and subtitle streams are copied unchanged; rotation, aspect ratio, colour tags and a bit
depth above 8 (10-bit output) are kept. Scene cuts are never blended across (the nearer frame is
repeated); duplicated input frames are skipped so that they do not turn into stutter. INPUT or
OUTPUT may be a folder of images. Every decoded frame is used: files with missing or disordered
timestamps, and raw streams (.264, .h264), are timed as ffmpeg does (with a warning).
An OUTPUT that exists is overwritten with -y, never with -n, and otherwise asked about (on a
terminal) or refused. A truncated INPUT is refused unless --allow-truncated.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "input", type=Path, help="input video (any format FFmpeg reads) or image folder"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output video (.mp4, .mkv, .mov, ...) or folder for PNG frames",
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=None,
        help="target frames per second (wins over --factor and --multi)",
    )
    parser.add_argument(
        "--factor",
        type=int,
        default=None,
        metavar="n",
        help="insert n frames between each pair: (n+1)x the frames (default 1: 2x)",
    )
    parser.add_argument(
        "--multi",
        type=int,
        default=None,
        metavar="N",
        help="multiply the frames by N, as RIFE's --multi: 2 = 2x = --factor 1",
    )
    parser.add_argument(
        "--frame-interval", type=int, default=1, help="process every k-th input frame (default 1)"
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "fp16", "bf16"],
        help="auto: fp16 autocast on CUDA, fp32 elsewhere",
    )
    parser.add_argument(
        "--batch-size", type=int, default=4, help="frame pairs per model call (default 4)"
    )
    parser.add_argument(
        "--codec",
        default=None,
        help="video encoder (default: libx264, H.264; VP9 for .webm, GIF for .gif)",
    )
    parser.add_argument(
        "--crf",
        type=int,
        default=17,
        help="quality for x264/x265/VP9/AV1 (default 17, visually lossless)",
    )
    parser.add_argument(
        "--no-scene-detect", action="store_true", help="interpolate across scene cuts too"
    )
    parser.add_argument(
        "--scene-threshold",
        type=float,
        default=27.0,
        help="PySceneDetect ContentDetector threshold",
    )
    parser.add_argument(
        "--no-dedup", action="store_true", help="treat duplicated input frames as motion stops"
    )
    parser.add_argument(
        "--input-fps",
        type=float,
        default=None,
        help="frame rate of an image-folder input or of a stream without timestamps "
        "(default 25, or the stream's own)",
    )
    parser.add_argument(
        "--allow-truncated",
        action="store_true",
        help="interpolate what a truncated input holds (a warning says how many frames)",
    )
    add_overwrite_arguments(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")


def frames_between(factor: int | None, multi: int | None) -> int | None:
    """``--factor n`` or ``--multi N`` -> frames inserted per pair (N - 1); None if neither."""
    if multi is None:
        return factor
    if multi < 1:
        raise EmavfiError(f"--multi must be 1 or more (2 doubles the frames), got {multi}")
    if factor is not None and factor != multi - 1:
        raise EmavfiError(
            f"--multi {multi} and --factor {factor} disagree (--multi N is --factor N-1): give one"
        )
    return multi - 1


def video_options(args: argparse.Namespace) -> VideoOptions:
    """The pipeline's options from this subcommand's arguments (the web UI parses the same).

    Whether an existing OUTPUT may be replaced is settled here (-y, -n, or asked on a terminal),
    after the arguments and the input are known to be good.
    """
    from emavfi.video.pipeline import VideoOptions

    factor = frames_between(args.factor, args.multi)
    if not args.input.exists():  # before asking about the output
        raise EmavfiError(f"input not found: {args.input}")
    return VideoOptions(
        fps=args.fps,
        factor=factor,
        frame_interval=args.frame_interval,
        scene_detect=not args.no_scene_detect,
        scene_threshold=args.scene_threshold,
        dedup=not args.no_dedup,
        codec=args.codec,
        crf=args.crf,
        batch_size=args.batch_size,
        input_fps=args.input_fps,
        progress=not args.quiet,
        overwrite=may_overwrite(args, [args.output] if args.output.is_file() else []),
        allow_truncated=args.allow_truncated,
    )


def interpolator_factory(args: argparse.Namespace) -> Callable[[], Interpolator]:
    """Builds the Interpolator once the pipeline has checked the input and output."""
    from emavfi.interpolator import Interpolator

    def make_interpolator() -> Interpolator:
        return Interpolator(
            args.model, precision=args.precision, batch_size=args.batch_size, **model_options(args)
        )

    return make_interpolator


def run(args: argparse.Namespace) -> int:
    from emavfi.video.pipeline import interpolate_video

    result = interpolate_video(
        args.input,
        args.output,
        options=video_options(args),
        make_interpolator=interpolator_factory(args),
    )
    if not args.quiet:
        print(
            f"wrote {result.output.resolve()}: {result.output_frames} frames "
            f"({result.synthesised} synthesised) from {result.input_frames} input frames, "
            f"{result.cuts} scene cut(s), {result.duplicates} duplicate(s), {result.seconds:.1f} s"
        )
    return 0
