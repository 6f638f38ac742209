"""``emavfi interpolate INPUT... [-o OUTPUT]``: smoother videos (a target fps or n frames per pair)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from emavfi.cli.options import (
    add_model_arguments,
    add_overwrite_arguments,
    add_quiet_argument,
    may_overwrite,
    model_options,
)
from emavfi.errors import EmavfiError

if TYPE_CHECKING:
    from emavfi.interpolator import Interpolator
    from emavfi.video.batch import Job
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
batch:
  Several INPUTs, or a folder of videos (--recursive: and its subfolders), are done one after the
  other into the folder -o (default: next to each input), each named NAME.60fps.mp4 or
  NAME.2x.mp4 (the input's container, or MP4). So is a single INPUT given without -o. Outputs
  that exist are skipped (-y redoes them); an input that fails is reported and the others go on;
  a summary ends the run, with exit code 1 if any input failed.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "inputs",
        type=Path,
        nargs="+",
        metavar="INPUT",
        help="input videos (any format FFmpeg reads), image folders, or folders of videos",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="output video (.mp4, .mkv, .mov, ...) or folder for PNG frames; with several "
        "inputs, the folder they go to (default: NAME.2x.mp4 or NAME.60fps.mp4 beside each input)",
    )
    parser.add_argument(
        "-r", "--recursive", action="store_true", help="look for videos in subfolders too"
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
    parser.add_argument(
        "--start",
        default=None,
        metavar="TIME",
        help="begin at this time of the input (ffmpeg's syntax: 90, 1.5, 01:30, 1:02:03.25)",
    )
    parser.add_argument(
        "--end",
        default=None,
        metavar="TIME",
        help="stop at this time of the input (audio and subtitles are cut to match)",
    )
    parser.add_argument(
        "--preview",
        type=int,
        default=None,
        metavar="N",
        help="only N evenly spaced synthesised frames, each beside its two inputs, as PNGs in "
        "the folder -o (default NAME.preview beside the input): to choose settings quickly",
    )
    parser.add_argument(
        "--segment",
        type=float,
        default=None,
        metavar="SECONDS",
        help="write the output in segments of this many seconds into OUTPUT.parts/ (kept "
        "until the end): a run stopped at any point resumes there, losing one segment at most",
    )
    parser.add_argument(
        "--cluster",
        default=None,
        metavar="ADDRESS",
        help='make the segments of --segment as tasks on a Ray cluster: "auto" (started on this '
        'machine with ray start) or ray://HOST:PORT; needs pip install "emavfi[cluster]"',
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="resume a segmented run (also done by default when OUTPUT.parts/ was made from the "
        "same input, model and settings); refused when it was not",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--batch-size", type=int, default=4, help="frame pairs per model call (default 4)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads in all, shared by the model, decoder and encoder (default: the cores "
        "this process may use; a quarter each to the codecs)",
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
    add_quiet_argument(parser, help="no progress bar and no summary")


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


def video_options(args: argparse.Namespace, overwrite: bool | None = None) -> VideoOptions:
    """The pipeline's options from this subcommand's arguments (the web UI parses the same).

    Whether an existing OUTPUT may be replaced is settled here (-y, -n, or asked on a terminal),
    after the arguments and the input are known to be good, unless ``overwrite`` says it (a batch
    has settled it for each output).
    """
    from emavfi.video.pipeline import VideoOptions
    from emavfi.video.timeline import parse_time

    factor = frames_between(args.factor, args.multi)
    for path in args.inputs:
        if not path.exists():  # before asking about the output
            raise EmavfiError(f"input not found: {path}")
    if args.output is not None and any(
        args.output.exists() and args.output.samefile(path) for path in args.inputs
    ):  # before asking whether to overwrite it
        raise EmavfiError(f"the output {args.output} is the input; choose another name")
    if overwrite is None:
        existing = [args.output] if args.output is not None and args.output.is_file() else []
        overwrite = may_overwrite(args, existing)
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
        overwrite=overwrite,
        allow_truncated=args.allow_truncated,
        threads=args.threads,
        segment_seconds=args.segment,
        cluster=args.cluster,
        resume=args.resume,
        model=json.dumps(
            {"model": args.model, **model_options(args)},
            sort_keys=True,
            default=str,
        ),
        start=None if args.start is None else parse_time(args.start, "--start"),
        end=None if args.end is None else parse_time(args.end, "--end"),
    )


def interpolator_factory(args: argparse.Namespace) -> Callable[[], Interpolator]:
    """Builds the Interpolator once the pipeline has checked the input and output."""
    import torch

    from emavfi.interpolator import Interpolator
    from emavfi.video.threads import thread_budget

    def make_interpolator() -> Interpolator:
        torch.set_num_threads(thread_budget(args.threads).torch)  # the process's, for the model
        return Interpolator(args.model, batch_size=args.batch_size, **model_options(args))

    return make_interpolator


def run(args: argparse.Namespace) -> int:
    from emavfi.video.batch import plan_jobs, run_jobs

    factor = frames_between(args.factor, args.multi)
    jobs, batch = plan_jobs(args.inputs, args.output, args.fps, factor, args.recursive)
    if args.preview is not None:
        return _preview(args, jobs, batch)
    if not batch and args.output is not None:  # one input, one output named by the user
        _convert(args, jobs[0], video_options(args), interpolator_factory(args))
        return 0
    options = video_options(args, overwrite=True)  # what exists is skipped unless -y
    if not batch:  # one input, its output named for it: its errors are the run's (exit 2)
        if jobs[0].output.exists() and not args.overwrite:
            print(f"{jobs[0].output} exists: skipped (-y redoes it)")
            return 0
        _convert(args, jobs[0], options, interpolator_factory(args))
        return 0
    make_interpolator = _built_once(interpolator_factory(args))
    if args.overwrite or not all(job.output.exists() for job in jobs):
        make_interpolator()  # a bad model is the whole run's mistake (exit 2), not each input's
    summary = run_jobs(
        jobs, lambda job: _convert(args, job, options, make_interpolator), redo=args.overwrite
    )
    if not args.quiet:
        print(
            f"{len(summary.done)} done, {len(summary.skipped)} skipped (already there), "
            f"{len(summary.failed)} failed, {summary.seconds:.1f} s"
        )
    for path, message in summary.failed:
        print(f"failed: {path}: {message}", file=sys.stderr)
    return 1 if summary.failed else 0


def _convert(args: argparse.Namespace, job: Job, options: VideoOptions, make_interpolator) -> None:
    from emavfi.video.pipeline import interpolate_video

    result = interpolate_video(
        job.input, job.output, options=options, make_interpolator=make_interpolator
    )
    if not args.quiet:
        print(
            f"wrote {result.output.resolve()}: {result.output_frames} frames "
            f"({result.synthesised} synthesised) from {result.input_frames} input frames, "
            f"{result.cuts} scene cut(s), {result.duplicates} duplicate(s), {result.seconds:.1f} s"
        )


def _preview(args: argparse.Namespace, jobs: list[Job], batch: bool) -> int:
    from emavfi.video.preview import write_preview

    if batch:
        raise EmavfiError("--preview takes one input")
    folder = args.output or jobs[0].input.parent / f"{jobs[0].input.stem}.preview"
    overwrite = may_overwrite(args, [folder] if folder.exists() else [])
    paths = write_preview(
        jobs[0].input,
        folder,
        args.preview,
        interpolator_factory(args),
        video_options(args, overwrite=overwrite),
    )
    if not args.quiet:
        print(f"wrote {len(paths)} preview image(s) into {folder.resolve()}")
    return 0


def _built_once(make: Callable[[], Interpolator]) -> Callable[[], Interpolator]:
    """``make`` called the first time only: a batch loads its model once."""
    built: list[Interpolator] = []

    def once() -> Interpolator:
        if not built:
            built.append(make())
        return built[0]

    return once
