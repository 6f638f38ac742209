"""Checkpoints: our safetensors format, the published EMA-VFI ``.pkl`` files, ``load_model``.

Our format is a safetensors file whose metadata holds ``format`` ("emavfi"), ``spec`` (the
registry name), ``arch`` (JSON keyword arguments that rebuild the network), ``channel_order`` and
``training`` (JSON summary). Published EMA-VFI checkpoints are plain ``dict[str, Tensor]``
pickles saved from a DDP wrapper: they are read with ``torch.load(weights_only=True)`` (which
never runs code from the file), stripped of wrapper prefixes and of the ``attn_mask`` / ``HW``
buffers, and the architecture is inferred from the tensor shapes. They expect BGR input.

An architecture read from a file is untrusted: ``check_arch`` holds it to the registry (the
spec's keys, the types and strings its family registers, numbers up to ``ARCH_GROWTH`` times the
family's largest) and the network is first built on the ``meta`` device (no memory) to compare
its shapes with the file's tensors, before anything is allocated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import warnings
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
ARCH_GROWTH = 4  # a file's arch numbers may reach this multiple of the family's largest


def check_arch(name: str, arch: Any) -> dict[str, Any]:
    """``arch`` (from a file) if it can describe a variant of the registered model ``name``,
    else EmavfiError: the spec's keys exactly; each value of a type the family's registered
    variants use for that key; strings among theirs; any boolean; numbers from min(1, theirs) to
    ``ARCH_GROWTH`` x their largest; lists of their lengths, item by item alike."""
    spec = get_spec(name)
    if not isinstance(arch, dict):
        raise EmavfiError(f"arch must be a mapping of arguments, got {type(arch).__name__}")
    missing, unknown = sorted(set(spec.arch) - set(arch)), sorted(set(arch) - set(spec.arch))
    if missing or unknown:
        raise EmavfiError(
            f"arch does not fit model {name!r}: missing {missing or 'none'}, unknown "
            f"{unknown or 'none'}"
        )
    family = [get_spec(n) for n in list_models(learned=True)]
    family = [s for s in family if s.builder is spec.builder] or [spec]
    for key in spec.arch:
        _check_arch_value(key, arch[key], [s.arch[key] for s in family if key in s.arch])
    return arch


def _check_arch_value(key: str, value: Any, registered: list[Any]) -> None:
    """EmavfiError unless ``value`` is like one of ``registered`` (see ``check_arch``)."""
    bad = EmavfiError(f"arch value {key}={_short(value)} is outside what the registry allows")
    sample = registered[0]
    if isinstance(sample, (list, tuple)):
        items = [item for entry in registered for item in entry]
        if not isinstance(value, (list, tuple)) or len(value) not in {len(r) for r in registered}:
            raise bad
        for index, item in enumerate(value):
            _check_arch_value(f"{key}[{index}]", item, items)
    elif isinstance(sample, bool):
        if not isinstance(value, bool):
            raise bad
    elif isinstance(sample, str) or sample is None:
        if not any(type(value) is type(r) and value == r for r in registered):
            raise bad
    elif isinstance(sample, (int, float)):
        kind = int if all(isinstance(r, int) for r in registered) else float
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            raise bad
        low, high = min(1, *registered), ARCH_GROWTH * max(registered)
        if not (math.isfinite(value) and low <= value <= high):
            raise bad
    elif value != sample:
        raise bad


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
    model: nn.Module,
    path: str | os.PathLike,
    *,
    training: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write ``model`` (with ``model.spec`` set by ``create_model``) to a safetensors file.

    The file is written to a temporary name in the same folder and renamed when complete.
    ``half`` stores floating-point tensors as float16 (half the size; loading converts them
    back to the model's float32), used for the packaged weights.
    """
    from safetensors.torch import save_file

    model = unwrap_model(model)
    spec: ModelSpec | None = getattr(model, "spec", None)
    if spec is None:
        raise ValueError("save_checkpoint needs a model built by create_model (model.spec)")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
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
        os.chmod(temp_name, 0o644)  # mkstemp creates 0600; a checkpoint is an ordinary file
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
        metadata = {
            **raw,
            "arch": json.loads(raw["arch"]),
            "training": json.loads(raw.get("training", "{}")),
        }
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
        # Published networks estimate their first flow themselves (no DIS warm start).
        "flow_init": "none",
    }


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """A ready model (eval mode, on ``device``, ``model.spec`` set) from a name or a file.

    Accepts a registry name (its packaged weights; engines need none), our ``.safetensors``
    checkpoint, or a published EMA-VFI ``.pkl`` / ``.pth`` (architecture inferred from the
    shapes, BGR input). Missing, corrupt or mismatched files raise EmavfiError (one line).
    """
    text = os.fspath(name_or_path)
    path = Path(text)
    if path.suffix.lower() == ".safetensors":
        model = _load_ours(path)
    elif path.suffix.lower() in _PUBLISHED_SUFFIXES:
        model = _load_published(path)
    elif path.exists() or os.sep in text or "/" in text:
        raise EmavfiError(
            f"{text}: unsupported checkpoint type (expected .safetensors, .pkl or .pth)"
        )
    else:
        model = _load_registered(text)
    return model.to(device).eval()


def _load_registered(name: str) -> nn.Module:
    spec = get_spec(name)
    if not spec.learned:
        return create_model(name)
    if spec.weights is None:
        raise EmavfiError(
            f"model {name!r} has no packaged weights: pass a checkpoint file instead "
            f"(.safetensors, or the published .pkl for {name})"
        )
    resource = resources.files("emavfi") / "weights" / spec.weights
    if not resource.is_file():
        raise EmavfiError(
            f"packaged weights {spec.weights} for model {name!r} are missing from the "
            "installation (emavfi/weights): reinstall, or pass a checkpoint file"
        )
    with resources.as_file(resource) as weights_path:
        if spec.sha256 and _sha256(weights_path) != spec.sha256:
            raise EmavfiError(f"packaged weights {spec.weights} fail their sha256 check")
        return _load_ours(weights_path, expected_spec=name)


def _load_ours(path: Path, expected_spec: str | None = None) -> nn.Module:
    state, metadata = load_checkpoint(path)
    name = metadata["spec"]
    if expected_spec is not None and name != expected_spec:
        raise EmavfiError(f"{path}: holds model {name!r}, expected {expected_spec!r}")
    if name not in list_models(learned=True):
        raise EmavfiError(f"{path}: unknown model {_short(name)} in checkpoint metadata")
    channel_order = metadata.get("channel_order", get_spec(name).channel_order)
    if channel_order not in ("RGB", "BGR"):
        raise EmavfiError(f"{path}: bad channel_order {_short(channel_order)} in metadata")
    model = _build_checked(name, metadata["arch"], state, path)
    model.spec = dataclasses.replace(model.spec, channel_order=channel_order)
    model.checkpoint_metadata = metadata
    return model


def _build_checked(name: str, arch: Any, state: dict[str, torch.Tensor], path: Path) -> nn.Module:
    """``create_model(name, **arch)`` loaded with ``state``, once ``arch`` passed ``check_arch``
    and a ``meta``-device build (no memory) has the file's tensor shapes."""
    try:
        check_arch(name, arch)
        with torch.device("meta"):
            _load_state(create_model(name, **arch), state, path, meta=True)
    except EmavfiError as exc:
        raise EmavfiError(f"{path}: {str(exc).removeprefix(f'{path}: ')}") from None
    except (TypeError, ValueError, RuntimeError) as exc:
        raise EmavfiError(
            f"{path}: arch {_short(arch)} does not build model {name!r} ({exc})"
        ) from None
    model = create_model(name, **arch)
    _load_state(model, state, path)
    return model


def _load_published(path: Path) -> nn.Module:
    _require_file(path)
    try:
        with warnings.catch_warnings():  # torch's notes on old pickles: the error below says it
            warnings.simplefilter("ignore", UserWarning)
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        if "Weights only load failed" in str(exc):
            if not _is_pickle(path):
                raise EmavfiError(f"{path}: not a PyTorch checkpoint (not a pickle)") from None
            raise EmavfiError(
                f"{path}: cannot be loaded safely: a pickle with objects besides tensors, or "
                "written by pickle rather than torch.save (loading it could run code from it); "
                "if you trust its source, re-save its weights once in Python with "
                "torch.save(model.state_dict(), 'weights.pth') and pass that file"
            ) from None
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EmavfiError(f"{path}: not a PyTorch checkpoint ({reason})") from None
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not any(isinstance(v, torch.Tensor) for v in raw.values()):
        raise EmavfiError(f"{path}: not a checkpoint (no tensors in a state dict)")
    state = convert_published(raw)
    try:
        arch = infer_published_arch(state)
    except EmavfiError as exc:
        raise EmavfiError(f"{path}: {exc}") from None
    name = _closest_published(arch)
    model = _build_checked(name, arch, state, path)
    exact = get_spec(name).arch == arch
    spec_name = name if exact else f"{name}-like"
    model.spec = dataclasses.replace(model.spec, name=spec_name, weights=None, sha256=None)
    logger.info(
        "loaded published EMA-VFI %s (width %d, depths %s)",
        spec_name,
        arch["width"],
        arch["depths"],
    )
    return model


def _closest_published(arch: dict[str, Any]) -> str:
    """The published spec with the nearest width (its builder and padding serve any width)."""
    return min(_PUBLISHED_SPECS, key=lambda n: abs(get_spec(n).arch["width"] - arch["width"]))


def _load_state(
    model: nn.Module, state: dict[str, torch.Tensor], path: Path, meta: bool = False
) -> None:
    """``load_state_dict(strict=True)`` with a one-line EmavfiError on any mismatch (``meta``:
    only compare names and shapes)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        name = getattr(getattr(model, "spec", None), "name", type(model).__name__)
        problems = [
            f"{label} {len(keys)} (e.g. {keys[0]})"
            for label, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("wrong shape", wrong),
            )
            if keys
        ]
        raise EmavfiError(f"{path}: weights do not match model {name!r}: " + "; ".join(problems))
    if not meta:
        model.load_state_dict(state, strict=True)


def _is_pickle(path: Path) -> bool:
    """A pickle (protocol 2+) or a ``torch.save`` zip archive, by the first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    return head[:1] == b"\x80" or head == b"PK"


def _require_file(path: Path) -> None:
    if not path.exists():
        raise EmavfiError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise EmavfiError(f"checkpoint is not a file: {path}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
