"""``emavfi demo``: interpolate the built-in sample (a frame pair and a 1 s clip), say where it is."""

from __future__ import annotations

import argparse
import shutil
from importlib import resources
from pathlib import Path

from emavfi.cli.options import add_device_argument, add_model_argument, add_quiet_argument
from emavfi.errors import EmavfiError


def asset(name: str) -> Path:
    """Path of a file of the built-in sample (``emavfi/assets``)."""
    path = Path(str(resources.files("emavfi") / "assets" / name))
    if not path.exists():
        raise EmavfiError(f"the built-in sample {name} is missing from the installation ({path})")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("emavfi-demo"),
        help="folder for the results (default: ./emavfi-demo; its files are replaced each run)",
    )
    add_model_argument(parser)
    add_device_argument(parser)
    parser.add_argument(
        "--fps", type=float, default=None, help="target fps for the clip (default: 2x, 50 fps)"
    )
    add_quiet_argument(parser)


def run(args: argparse.Namespace) -> int:
    from emavfi.imageio import read_image, write_image
    from emavfi.interpolator import Interpolator
    from emavfi.video.compare import side_by_side
    from emavfi.video.pipeline import VideoOptions, interpolate_video

    out = args.output
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmavfiError(f"cannot create the demo folder {out}: {exc.strerror}") from exc
    interp = Interpolator(args.model, device=args.device)
    inputs = {}
    for name in ("frame0.png", "frame1.png", "sample_clip.mp4"):
        inputs[name] = out / f"input_{name}"
        shutil.copyfile(asset(name), inputs[name])
    middle = interp.frames(
        read_image(inputs["frame0.png"]), read_image(inputs["frame1.png"]), [0.5]
    )[0]
    middle_path = out / "middle_frame.png"
    write_image(middle_path, middle)
    video_path = out / "sample_interpolated.mp4"
    options = VideoOptions(
        fps=args.fps, factor=None if args.fps else 1, progress=not args.quiet, overwrite=True
    )
    result = interpolate_video(inputs["sample_clip.mp4"], video_path, interp, options)
    rate = f"{args.fps:g} fps" if args.fps else "2x"
    comparison = side_by_side(
        inputs["sample_clip.mp4"],
        video_path,
        out / "comparison_side_by_side.mp4",
        labels=("input", f"emavfi {interp.name} {rate}"),
        overwrite=True,
    )
    print(f"model: {interp.name} on {interp.device}")
    print(f"input frames:   {inputs['frame0.png']}  {inputs['frame1.png']}")
    print(f"middle frame:   {middle_path}")
    print(f"input clip:     {inputs['sample_clip.mp4']}")
    print(
        f"output clip:    {video_path} ({result.output_frames} frames from {result.input_frames})"
    )
    print(f"side by side:   {comparison} (left: input, right: interpolated)")
    return 0
