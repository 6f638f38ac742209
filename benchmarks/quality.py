"""Regenerate the README's results tables: PSNR / SSIM / IE / sharpness on any presets.

    python benchmarks/quality.py                       # blend and classical
    python benchmarks/quality.py --model ema-cpu --model my.safetensors -o runs/quality
    python benchmarks/quality.py --model ema-cpu --scale 0.5 --fast   # the --fast mode's quality
    python benchmarks/quality.py --model ema-cpu --dataset large-motion-synthetic \
        --dataset foreman-gap4 --dataset zhling-gap4 -o runs/large-motion   # large motions

The data root defaults to ``../shared/data`` next to the repository (``middlebury/``,
``ucf101/``, ``streams/``; ``large-motion-synthetic`` needs none); the same run is ``emavfi eval
--data-root DIR --dataset middlebury --dataset ucf101 --model blend --model classical``. Prints
the Markdown table for the README.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from emavfi.cli.options import (
    add_runtime_arguments,
    add_scale_arguments,
    runtime_options,
    scale_options,
)
from emavfi.errors import EmavfiError
from emavfi.evaluate.report import markdown_table, write_outputs
from emavfi.evaluate.runner import Evaluator
from emavfi.evaluate.suites import PRESETS, parse_suite

DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
BASELINES = ["blend", "classical"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT), help=f"default: {DEFAULT_ROOT}")
    parser.add_argument(
        "--model", action="append", default=[], help="model to add to the baselines"
    )
    parser.add_argument(
        "--dataset",
        action="append",
        help=f"{', '.join(PRESETS)} or KIND:PATH, repeatable (default: middlebury, ucf101)",
    )
    parser.add_argument("--limit", type=int, help="at most N samples per dataset (quick check)")
    parser.add_argument("--device", default="auto")
    add_scale_arguments(parser)  # --scale/--fast as in `emavfi eval`
    add_runtime_arguments(parser)  # --precision/--backend
    parser.add_argument("-o", "--output", help="also write results.json, results.md, report.html")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        names = args.dataset or ["middlebury", "ucf101"]
        suites = [parse_suite(name, args.data_root, args.limit) for name in names]
        evaluator = Evaluator(
            BASELINES + args.model,
            device=args.device,
            progress=True,
            **scale_options(args),
            **runtime_options(args),
        )
        results = evaluator.run(suites)
        if args.output:
            write_outputs(results, evaluator, args.output)
    except EmavfiError as exc:
        print(f"quality: error: {exc}", file=sys.stderr)
        return 2
    print(markdown_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
