"""``emavfi models``: the registered networks and engines."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    from emavfi.models.registry import DEFAULT_MODEL, get_spec, list_models

    for name in list_models():
        spec = get_spec(name)
        kind = "network" if spec.learned else "engine"
        default = " (default)" if name == DEFAULT_MODEL else ""
        weights = f", weights {spec.weights}" if spec.weights else ""
        print(f"{name:12s} {kind:8s} {spec.channel_order}{weights}{default}: {spec.description}")
    return 0
