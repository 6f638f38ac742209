"""``emavfi models``: the registered networks and engines, the default, and where weights live."""

from __future__ import annotations

import argparse
from importlib import resources


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def weights_text(name: str) -> str:
    """Where the weights of registered model ``name`` come from, in a few words."""
    from emavfi.models.registry import get_spec

    spec = get_spec(name)
    if not spec.learned:
        return "none (weight-free)"
    if spec.weights is None:
        return "not packaged: needs a path, --model FILE (.safetensors or a published .pkl)"
    packaged = resources.files("emavfi") / "weights" / spec.weights
    if not packaged.is_file():
        return f"packaged file missing from the installation: {packaged}"
    return str(packaged)


def run(args: argparse.Namespace) -> int:
    from emavfi.models.registry import DEFAULT_MODEL, get_spec, list_models

    names = list_models()
    width = max(len(name) for name in names) + len(" (default)")
    for name in names:
        spec = get_spec(name)
        kind = "network" if spec.learned else "engine"
        label = f"{name} (default)" if name == DEFAULT_MODEL else name
        print(f"{label:{width}s} {kind:8s} {spec.channel_order}  {spec.description}")
        print(f"{'':{width}s} weights: {weights_text(name)}")
    print(f"\nWithout --model, commands use {DEFAULT_MODEL}. --model also takes a checkpoint path.")
    return 0
