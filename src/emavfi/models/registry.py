"""Model registry: every network and weight-free engine is a named ``ModelSpec``.

``create_model(name, **overrides)`` is the only way to build a model (timm's pattern): variants
are small specs over one parameterised class, never copied files. Specs are registered by the
modules that define the classes (``emavfi.models.ema_vfi.specs``, ``emavfi.engines``), which
``_ensure_registered`` imports on first use so that importing this module has no side effects.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from emavfi.errors import EmavfiError

# The model used when none is named (interpolate, pair, demo, eval).
DEFAULT_MODEL = "ema-cpu"

_REGISTRY: dict[str, ModelSpec] = {}
_SPEC_MODULES = ("emavfi.models.ema_vfi.specs", "emavfi.models.rife.specs", "emavfi.engines")


@dataclass(frozen=True)
class ModelSpec:
    """What is needed to build, pad, feed and load one named model.

    Attributes:
        name: registry name, e.g. ``ema-small``.
        builder: callable ``builder(**arch) -> nn.Module`` with the model contract
            (``emavfi.models.contract``): ``forward(img0, img1, timestep) -> (B, 3, H, W)``.
        arch: keyword arguments for ``builder`` (saved in checkpoints to rebuild the model).
        weights: file name inside ``emavfi/weights`` of packaged weights, or None.
        sha256: expected hash of the packaged weights file, or None.
        published: file name of the authors' released checkpoint, which loads by path (named
            in the error when the model is asked for by name without packaged weights).
        pad_multiple: inputs are padded so that H and W are multiples of this at flow scale 1;
            a model that takes ``flow_scale`` gets ``pad_multiple / flow_scale`` (rounded up).
        flow_scales: the ``flow_scale`` values (``--scale``) the network takes; None: any in
            (0, 1].
        channel_order: ``"RGB"`` or ``"BGR"``: what the network was trained on.
        arbitrary_t: whether the model takes any timestep in (0, 1) (else only 0.5).
        learned: False for weight-free engines (blend, classical).
        description: one line for ``emavfi models``.
        graph_bf16: whether the model keeps its quality with bfloat16 throughout an exported
            graph (OpenVINO lowers every operation, warping included), measured with
            ``benchmarks/quality.py --backend openvino --precision bf16``: then ``--precision
            auto`` uses bf16 there too on CPUs that have it (else float32 in graphs).
    """

    name: str
    builder: Callable[..., nn.Module]
    arch: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    sha256: str | None = None
    published: str | None = None
    pad_multiple: int = 1
    flow_scales: tuple[float, ...] | None = None
    channel_order: str = "RGB"
    arbitrary_t: bool = True
    learned: bool = True
    description: str = ""
    graph_bf16: bool = False

    def pad_multiple_at(self, flow_scale: float) -> int:
        """The size multiple when motion is estimated at ``flow_scale``: ``pad_multiple / scale``."""
        return math.ceil(self.pad_multiple / flow_scale)


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (re-registering the same name replaces it)."""
    if spec.channel_order not in ("RGB", "BGR"):
        raise ValueError(f"channel_order must be RGB or BGR, not {spec.channel_order!r}")
    _REGISTRY[spec.name] = spec
    return spec


def _ensure_registered() -> None:
    for module_name in _SPEC_MODULES:
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise


def list_models(learned: bool | None = None) -> list[str]:
    """Names of registered models; ``learned=True/False`` filters networks/engines."""
    _ensure_registered()
    return sorted(n for n, s in _REGISTRY.items() if learned is None or s.learned == learned)


def get_spec(name: str) -> ModelSpec:
    """The spec registered as ``name``; unknown names raise EmavfiError with a close match."""
    _ensure_registered()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise EmavfiError(f"unknown model {name!r}{hint}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build the model ``name`` with random (untrained) weights; ``overrides`` replace arch args.

    Packaged or file weights are loaded by ``emavfi.models.checkpoints.load_model``.
    """
    spec = get_spec(name)
    unknown = set(overrides) - set(spec.arch)
    if spec.arch and unknown:
        raise EmavfiError(
            f"model {name!r} has no argument(s) {sorted(unknown)}; it takes {sorted(spec.arch)}"
        )
    model = spec.builder(**{**spec.arch, **overrides})
    model.spec = dataclasses.replace(spec, arch={**spec.arch, **overrides})
    return model
