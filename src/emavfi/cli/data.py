"""``emavfi data``: prepare, extract and check training data (scene-folder layout)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    prepare = actions.add_parser(
        "prepare-middlebury",
        help="Middlebury download (other-color-allframes, other-gt-interp, "
        "other-gt-flow) -> scene folders; .flo -> .npy",
    )
    prepare.add_argument("src", help="folder of the unpacked Middlebury download")
    prepare.add_argument("dst", help="output folder of scene folders")
    extract = actions.add_parser("extract", help="a video -> scene folders, cut at scene changes")
    extract.add_argument("video", help="video file")
    extract.add_argument("dst", help="output folder")
    extract.add_argument(
        "--threshold",
        type=float,
        default=27.0,
        help="scene-cut threshold (PySceneDetect content detector)",
    )
    extract.add_argument(
        "--min-scene-len",
        type=int,
        default=3,
        help="shortest scene the detector reports, in frames",
    )
    extract.add_argument("--min-frames", type=int, default=3, help="drop scenes with fewer frames")
    check = actions.add_parser(
        "check", help="validate a data folder; lists every problem, exit 1 if any"
    )
    check.add_argument("dir", help="data folder (scenes, or split folders of scenes)")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "prepare-middlebury":
        from emavfi.data.prepare import prepare_middlebury

        for folder in prepare_middlebury(args.src, args.dst):
            print(folder)
        return 0
    if args.data_command == "extract":
        from emavfi.data.prepare import extract_video

        scenes = extract_video(
            args.video, args.dst, args.threshold, args.min_scene_len, args.min_frames
        )
        for folder, count in scenes:
            print(f"{folder}  {count} frames")
        return 0
    from emavfi.data.check import check_data_dir

    report = check_data_dir(args.dir)
    for problem in report.problems:
        print(problem)
    for split, counts in sorted(report.counts.items()):
        print(f"split {split}: {counts['scenes']} scenes, {counts['frames']} frames")
    print(f"{len(report.problems)} problem(s)" if report.problems else "no problems")
    return 1 if report.problems else 0
