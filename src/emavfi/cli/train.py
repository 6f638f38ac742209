"""``emavfi train [--config FILE] [--set key=value ...] [--resume]``: train a model from a YAML config.

Under torchrun (``torchrun --nproc_per_node N -m emavfi.cli.main train ...``) every process runs
this same command; only rank 0 writes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import yaml

DEFAULT_CONFIG = Path("config/train_config.yaml")
logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"YAML config (default: {DEFAULT_CONFIG} if it exists, else built-in defaults)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (value parsed as YAML; dotted keys for sections), repeatable",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue exactly from <checkpoint_path>/last.pt"
    )
    parser.add_argument(
        "--show-config", action="store_true", help="print the resulting config and exit"
    )


def run(args: argparse.Namespace) -> int:
    from emavfi.config import load_config, to_dict
    from emavfi.train.config import TrainConfig

    path = args.config
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    cfg = load_config(TrainConfig, path, args.overrides)
    if args.show_config:
        sys.stdout.write(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return 0
    from emavfi.train.loop import train

    result = train(cfg, resume=args.resume)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    if result.best_model is not None:
        print(
            f"best model: {result.best_model} (validation PSNR {result.best_psnr:.2f} dB, step {result.step})"
        )
    print(f"stopped: {result.stop_reason}; resume checkpoint: {result.checkpoint}")
    return 0
