"""Checkpoints: our safetensors format, the published EMA-VFI ``.pkl`` files, ``load_model``.

Our format is a safetensors file whose metadata holds ``format`` ("emavfi"), ``spec`` (the
registry name), ``arch`` (JSON keyword arguments that rebuild the network), ``channel_order`` and
``training`` (JSON summary). Published EMA-VFI checkpoints are plain ``dict[str, Tensor]``
pickles saved from a DDP wrapper: they are read with ``torch.load(weights_only=True)`` (which
never runs code from the file), stripped of wrapper prefixes and of the ``attn_mask`` / ``HW``
buffers, and the architecture is inferred from the tensor shapes. They expect BGR input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emavfi.errors import EmavfiError
from emavfi.models.registry import ModelSpec, create_model, get_spec, list_models

logger = logging.getLogger(__name__)

FORMAT = "emavfi"
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_PUBLISHED_SUFFIXES = (".pkl", ".pth", ".pt")
_PUBLISHED_SPECS = ("ema-base", "ema-small")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DDP / DataParallel / torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        else:
            return model


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike, *, training: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` (with ``model.spec`` set by ``create_model``) to a safetensors file.

    The file is written to a temporary name in the same folder and renamed when complete.
    """
    from safetensors.torch import save_file

    model = unwrap_model(model)
    spec: ModelSpec | None = getattr(model, "spec", None)
    if spec is None:
        raise ValueError("save_checkpoint needs a model built by create_model (model.spec)")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "spec": spec.name,
        "arch": json.dumps(spec.arch),
        "channel_order": spec.channel_order,
        "training": json.dumps(training or {}),
    }
    path = Path(path)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    os.close(handle)
    try:
        save_file(tensors, temp_name, metadata=metadata)
        os.replace(temp_name, path)
    finally:
        if os.path.exists(temp_name):
            os.remove(temp_name)
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read our safetensors checkpoint: (state dict, metadata with ``arch``/``training`` parsed)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    _require_file(path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise EmavfiError(f"{path}: not a readable safetensors checkpoint ({exc})") from None
    if raw.get("format") != FORMAT or "spec" not in raw:
        raise EmavfiError(f"{path}: safetensors file without emavfi metadata (no model spec)")
    try:
        metadata = {**raw, "arch": json.loads(raw["arch"]),
                    "training": json.loads(raw.get("training", "{}"))}
    except (KeyError, json.JSONDecodeError) as exc:
        raise EmavfiError(f"{path}: corrupt emavfi metadata ({exc})") from None
    return state, metadata


def convert_published(state_dict: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A published (or wrapper-saved) state dict with our names.

    Strips ``module.`` / ``_orig_mod.`` prefixes and drops the shifted-window blocks'
    ``attn_mask`` / ``HW`` buffers (a cache the published code saved by accident).
    """
    converted = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            continue
        while key.startswith(_WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        if key.endswith((".attn_mask", ".HW")):
            continue
        converted[key] = value
    return converted


def infer_published_arch(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """EMAVFI arch kwargs (width, window_size, depths, deform_fusion) from converted shapes."""
    first = state.get("feature_bone.block1.conv.0.weight")
    if first is None or first.ndim != 4:
        raise EmavfiError("not an EMA-VFI checkpoint (no feature_bone.block1 weights)")
    depths = []
    for stage in range(1, 6):
        if stage <= 3:
            pattern = re.compile(rf"feature_bone\.block{stage}\.conv\.(\d+)\.weight$")
            indices = {int(m.group(1)) for k in state if (m := pattern.match(k))}
            depth = len([i for i in indices if i % 2 == 0])
        else:
            pattern = re.compile(rf"feature_bone\.block{stage}\.(\d+)\.")
            depth = len({int(m.group(1)) for k in state if (m := pattern.match(k))})
        depths.append(depth)
    # The window size does not change any shape; every published model uses 7.
    return {
        "width": int(first.shape[0]),
        "window_size": 7,
        "depths": depths,
        "deform_fusion": any(k.startswith("fusion.") for k in state),
    }
