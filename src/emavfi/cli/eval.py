"""``emavfi eval``: models x datasets -> console table, results.md, results.json, report.html.

``python eval.py`` (the original description's entry point) runs this with ``--seed-defaults``:
the best model of a training run (``best_model_path``, else ``best_ema_vfi.safetensors``, else the
default model) on the validation data named by ``config/train_config.yaml`` (``val_sources`` if
given, else the scene folders of ``val_data_dir``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import yaml

from emavfi.cli.options import (
    add_device_argument,
    add_runtime_arguments,
    add_scale_arguments,
    runtime_options,
    scale_options,
)
from emavfi.errors import EmavfiError
from emavfi.evaluate.suites import KINDS, PRESETS, parse_suite, unique_names

log = logging.getLogger(__name__)

SEED_CONFIG = Path("config/train_config.yaml")
SEED_VAL_DIR = "data/processed/val"
SEED_BEST_MODEL = "best_ema_vfi.safetensors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        action="append",
        metavar="NAME_OR_PATH",
        help="registry name (blend, classical, ema-cpu ...) or checkpoint; repeat to compare "
        "(default: the default model)",
    )
    parser.add_argument(
        "--dataset",
        action="append",
        metavar="KIND:PATH",
        help=f"dataset to evaluate on, repeatable; KIND is one of {', '.join(KINDS)}, or a preset "
        f"({', '.join(PRESETS)}) found under --data-root",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUTDIR",
        help="write results.json, results.md and report.html (with report_files/) here",
    )
    parser.add_argument(
        "--limit", type=int, metavar="N", help="evaluate at most N samples per dataset"
    )
    add_device_argument(parser)
    parser.add_argument(
        "--data-root",
        metavar="DIR",
        help="folder holding the preset datasets (middlebury/, ucf101/, streams/ ...); "
        "large-motion-synthetic needs none",
    )
    parser.add_argument(
        "--lpips-weights",
        metavar="PATH",
        help="LPIPS linear layers (+ optional net.* backbone) as .pth or .safetensors",
    )
    parser.add_argument(
        "--lpips-net",
        choices=("alex", "vgg"),
        default="alex",
        help="LPIPS backbone (default: alex)",
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=2,
        metavar="N",
        help="per dataset, each model's N worst samples (by its own PSNR) and the N best on "
        "average, shown in the HTML report (default: 2)",
    )
    add_scale_arguments(parser)
    add_runtime_arguments(parser)
    parser.add_argument("--no-html", action="store_true", help="skip the HTML report")
    parser.add_argument("--seed-defaults", action="store_true", help=argparse.SUPPRESS)


def _seed_config() -> dict:
    if not SEED_CONFIG.is_file():
        log.warning("no %s here: using the default validation folder %s", SEED_CONFIG, SEED_VAL_DIR)
        return {}
    try:
        config = yaml.safe_load(SEED_CONFIG.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise EmavfiError(f"cannot parse {SEED_CONFIG}: {str(exc).splitlines()[0]}") from exc
    return config if isinstance(config, dict) else {}


def apply_seed_defaults(args: argparse.Namespace) -> None:
    """Fill ``--model`` and ``--dataset`` the way the original ``eval.py`` is described."""
    config = _seed_config()
    val_sources = config.get("val_sources") or []
    if not args.dataset and isinstance(val_sources, list) and val_sources:
        try:
            args.dataset = [f"{source['kind']}:{source['path']}" for source in val_sources]
        except (TypeError, KeyError) as exc:
            raise EmavfiError(
                f"val_sources in {SEED_CONFIG} needs kind and path per entry"
            ) from exc
        log.info("evaluating on val_sources: %s", ", ".join(args.dataset))
    if not args.dataset:
        val_dir = str(config.get("val_data_dir") or SEED_VAL_DIR)
        if not Path(val_dir).exists():
            raise EmavfiError(
                f"validation folder {val_dir} not found (val_data_dir in {SEED_CONFIG}); "
                "pass --dataset KIND:PATH, e.g. --dataset triplet:../shared/data/ucf101"
            )
        log.info("evaluating on the validation folder %s (val_data_dir)", val_dir)
        args.dataset = [f"scenes:{val_dir}"]
    if not args.model:
        configured = config.get("best_model_path")
        candidates = [Path(str(configured)).with_suffix(".safetensors")] if configured else []
        candidates.append(Path(SEED_BEST_MODEL))
        best = next((c for c in candidates if c.is_file()), None)
        if best is None:
            log.info(
                "no %s found: evaluating the default model",
                " or ".join(map(str, dict.fromkeys(candidates))),
            )
        args.model = [str(best)] if best else [None]


def run(args: argparse.Namespace) -> int:
    from emavfi.evaluate.report import console_table, write_outputs
    from emavfi.evaluate.runner import Evaluator
    from emavfi.models.registry import list_models

    if args.seed_defaults:
        apply_seed_defaults(args)
    if not args.dataset:
        raise EmavfiError(
            "no dataset: pass --dataset KIND:PATH (e.g. triplet:../shared/data/ucf101)"
        )
    if args.examples < 0:
        raise EmavfiError(f"--examples must be 0 or more, got {args.examples}")
    suites = unique_names([parse_suite(text, args.data_root, args.limit) for text in args.dataset])
    lpips = None
    if args.lpips_weights:
        from emavfi.evaluate.lpips import load_lpips
        from emavfi.interpolator import resolve_device

        lpips = load_lpips(args.lpips_weights, args.lpips_net, device=resolve_device(args.device))
    models = args.model or [None]
    known = list_models()
    for model in models:
        if model is None or model in known:  # names like rife-4.25 have a "suffix" too
            continue
        if ("/" in model or Path(model).suffix) and not Path(model).is_file():
            raise EmavfiError(f"model checkpoint not found: {model}")
    evaluator = Evaluator(
        models,
        device=args.device,
        lpips=lpips,
        progress=True,
        **scale_options(args),
        **runtime_options(args),
    )
    if lpips is None:
        log.info("LPIPS %s", evaluator.lpips_note())
    results = evaluator.run(suites)
    print(console_table(results))
    if args.output:
        paths = write_outputs(
            results, evaluator, args.output, html_report=not args.no_html, examples=args.examples
        )
        for kind, path in paths.items():
            print(f"{kind}: {path}")
    return 0
