"""Checkpoints: our safetensors format, the published ``.pkl`` files, ``load_model``.

Our format is a safetensors file whose metadata holds ``format`` ("emavfi"), ``spec`` (the
registry name), ``arch`` (JSON keyword arguments that rebuild the network), ``channel_order`` and
``training`` (JSON summary).

Published checkpoints are plain ``dict[str, Tensor]`` pickles: EMA-VFI's ``ours.pkl`` /
``ours_small.pkl`` (saved from a DDP wrapper) and Practical-RIFE v4.25's ``flownet.pkl``. They
are read with ``torch.load(weights_only=True)`` (which never runs code from the file), stripped
of wrapper prefixes and of what inference does not use (``convert_published``), told apart by
their keys, and their architecture is inferred from the tensor shapes. Both expect BGR input.

Every file is untrusted, and one path (``_build_checked``) validates it before anything real is
built. An architecture claimed by metadata is first held to the registry by ``check_arch`` (the
spec's keys, the types and strings its family registers, numbers up to ``ARCH_GROWTH`` times the
family's largest), so that a few bytes of JSON cannot ask for a network of millions of layers;
one inferred from the tensors can only describe what the file holds. Then the network is built
on the ``meta`` device (shapes only: no memory, no initialisation; the builder's own checks run)
and every key and shape of the file is compared with it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emavfi.errors import TORCH_LOAD_ERRORS, EmavfiError
from emavfi.models.registry import ModelSpec, create_model, get_spec, list_models
from emavfi.tempfiles import atomic_path

logger = logging.getLogger(__name__)

FORMAT = "emavfi"
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_PUBLISHED_SUFFIXES = (".pkl", ".pth", ".pt")
_PUBLISHED_SPECS = ("ema-base", "ema-small")
_RIFE_SPEC = "rife-4.25"
# Entries of published files that inference does not use: EMA-VFI's shifted-window caches
# (suffixes) and Practical-RIFE's training-time teacher block and unused timestep net (prefixes).
_UNUSED_SUFFIXES = (".attn_mask", ".HW")
_UNUSED_PREFIXES = ("teacher.", "caltime.")
_RIFE_BLOCK = re.compile(r"block(\d+)\.")
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
    with atomic_path(path) as temp:
        save_file(tensors, str(temp), metadata=metadata)
        os.chmod(temp, 0o644)  # safetensors creates it 0600; a checkpoint is an ordinary file
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

    Strips ``module.`` / ``_orig_mod.`` prefixes, drops EMA-VFI's shifted-window ``attn_mask`` /
    ``HW`` buffers (a cache the published code saved by accident) and Practical-RIFE's
    ``teacher.*`` (training-time teacher) and ``caltime.*`` (unused by the v4.25 forward).
    """
    converted = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            continue
        while key.startswith(_WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        if key.endswith(_UNUSED_SUFFIXES) or key.startswith(_UNUSED_PREFIXES):
            continue
        converted[key] = value
    return converted


def published_model(state: dict[str, torch.Tensor]) -> tuple[str, dict[str, Any]]:
    """The spec name and arch of a converted published state dict, told apart by its keys."""
    if "feature_bone.block1.conv.0.weight" in state:
        arch = infer_published_arch(state)
        return _closest_published(arch), arch
    if "block0.conv0.0.0.weight" in state:
        return _RIFE_SPEC, infer_rife_arch(state)
    raise EmavfiError(
        "not an EMA-VFI or Practical-RIFE v4 checkpoint "
        "(no feature_bone.block1.* or block0.*/encode.* weights)"
    )


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


def infer_rife_arch(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """IFNet arch kwargs (``widths``) of a converted Practical-RIFE v4 state dict.

    Each block's width is the output channels of its second ``conv0`` layer; the count, parity
    and range of the widths and every other shape are checked when the network is built on
    the meta device (``_build_checked``).
    """
    if "encode.cnn0.weight" not in state:
        raise EmavfiError(
            "a RIFE checkpoint without the feature encoder (encode.*) of the Practical-RIFE "
            "v4.25 layout, the one emavfi reads"
        )
    indices = sorted({int(m.group(1)) for key in state if (m := _RIFE_BLOCK.match(key))})
    if indices != list(range(len(indices))):
        raise EmavfiError(f"Practical-RIFE checkpoint with blocks {indices}, not block0, 1, ...")
    widths = []
    for index in indices:
        weight = state.get(f"block{index}.conv0.1.0.weight")
        if weight is None or weight.ndim != 4:
            raise EmavfiError(
                f"Practical-RIFE checkpoint without a 4-d block{index}.conv0.1.0.weight"
            )
        widths.append(int(weight.shape[0]))
    return {"widths": widths}


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """A ready model (eval mode, on ``device``, ``model.spec`` set) from a name or a file.

    Accepts a registry name (its packaged weights; engines need none), our ``.safetensors``
    checkpoint, or a published EMA-VFI or Practical-RIFE v4.25 ``.pkl`` / ``.pth`` (family told
    by the keys, architecture inferred from the shapes, BGR input). Missing, corrupt or
    mismatched files raise EmavfiError (one line).
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
        if spec.published:
            hint = f"the path of its released {spec.published} (--model path/to/{spec.published})"
        else:
            hint = "a .safetensors checkpoint of it"
        raise EmavfiError(f"model {name!r} has no packaged weights: pass {hint} instead")
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


def _build_checked(
    name: str,
    arch: Any,
    state: dict[str, torch.Tensor],
    path: Path,
    *,
    inferred: bool = False,
) -> nn.Module:
    """``create_model(name, **arch)`` holding ``state``, or a one-line EmavfiError.

    The one path by which a file's network is built. ``arch`` claimed by metadata is first held
    to the registry (``check_arch``); ``inferred`` (measured from ``state``'s shapes by our own
    code) skips that, as it can only describe what the file holds. Then the network is built on
    the meta device (no memory; the builder's own checks run) and every key and shape of
    ``state`` is compared with it; only then is the real network built and loaded.
    """
    try:
        if not inferred:
            check_arch(name, arch)
        elif not isinstance(arch, dict):
            raise EmavfiError(f"arch {_short(arch)} is not a set of keyword arguments")
        with torch.device("meta"):
            skeleton = create_model(name, **arch)
    except EmavfiError as exc:
        raise EmavfiError(f"{path}: {str(exc).removeprefix(f'{path}: ')}") from None
    except (TypeError, ValueError, RuntimeError) as exc:
        raise EmavfiError(
            f"{path}: arch {_short(arch)} does not build model {name!r} ({exc})"
        ) from None
    _check_state(skeleton.state_dict(), state, name, path)
    model = create_model(name, **arch)
    model.load_state_dict(state, strict=True)
    return model


def _load_published(path: Path) -> nn.Module:
    _require_file(path)
    try:
        with warnings.catch_warnings():  # torch's notes on old pickles: the error below says it
            warnings.simplefilter("ignore", UserWarning)
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except TORCH_LOAD_ERRORS as exc:  # any of them means "not a checkpoint"
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
        name, arch = published_model(state)
    except EmavfiError as exc:
        raise EmavfiError(f"{path}: {exc}") from None
    model = _build_checked(name, arch, state, path, inferred=True)
    exact = get_spec(name).arch == arch
    spec_name = name if exact else f"{name}-like"
    model.spec = dataclasses.replace(model.spec, name=spec_name, weights=None, sha256=None)
    logger.info(
        "loaded published %s (%s)", spec_name, ", ".join(f"{k} {v}" for k, v in arch.items())
    )
    return model


def _closest_published(arch: dict[str, Any]) -> str:
    """The published spec with the nearest width (its builder and padding serve any width)."""
    return min(_PUBLISHED_SPECS, key=lambda n: abs(get_spec(n).arch["width"] - arch["width"]))


def _check_state(
    expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], name: str, path: Path
) -> None:
    """One-line EmavfiError unless ``state`` has exactly the keys and shapes of ``expected``."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
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
