"""Entry point of the `emavfi` command.

Each subcommand lives in its own module with ``add_arguments(parser)`` and ``run(args) -> int``.
``EmavfiError`` (the user's mistakes) becomes one line on stderr and exit code 2. SIGTERM is
handled like Ctrl-C (outputs being written are removed), with exit code 143.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import signal
import sys
import threading

from emavfi import __version__
from emavfi.errors import EmavfiError

# name -> (module, one-line help). Modules are imported lazily so `emavfi --help` stays fast
# and a broken optional dependency of one subcommand cannot break the others.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("emavfi.cli.demo", "interpolate the built-in sample and say where the result is"),
    "pair": ("emavfi.cli.pair", "interpolate frames between two images"),
    "interpolate": (
        "emavfi.cli.interpolate",
        "interpolate a video (higher frame rate or slow motion)",
    ),
    "train": ("emavfi.cli.train", "train a model from a YAML config"),
    "eval": ("emavfi.cli.eval", "evaluate models on datasets (PSNR, SSIM, IE, LPIPS)"),
    "data": ("emavfi.cli.data", "prepare, extract and check training data"),
    "models": ("emavfi.cli.models", "list the registered models and engines"),
    "export": ("emavfi.cli.export", "write a learned model as ONNX (ONNX Runtime, vs-mlrt)"),
    "ui": (
        "emavfi.cli.ui",
        "a local web page: drop a video, pick the frame rate, compare, download",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emavfi", description="Video frame interpolation with EMA-VFI."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    parser.add_argument("--version", action="version", version=f"emavfi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # subcommand not written yet
                continue
            raise
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C."""


def _terminate(signum, frame) -> None:
    raise Terminated


def main(
    argv: list[str] | None = None,
    *,
    prog: str | None = None,
    flag_names: dict[str, str] | None = None,
) -> int:
    """Run one subcommand. ``prog`` names the command in error lines (the ``inference.py`` and
    ``train.py`` shims give their own name), ``flag_names`` renames flags in them (a shim's
    ``--target_fps`` for ``--fps``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    name = prog or f"emavfi {args.command}"
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return int(args._run(args) or 0)
    except EmavfiError as exc:
        print(f"{name}: error: {_renamed(str(exc), flag_names or {})}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print(f"{name}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _renamed(message: str, flag_names: dict[str, str]) -> str:
    for flag, alias in flag_names.items():
        message = re.sub(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", alias, message)
    return message


if __name__ == "__main__":
    sys.exit(main())
