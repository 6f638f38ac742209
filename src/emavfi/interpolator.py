"""The interpolation API: any frame size, any timesteps, any registered model or checkpoint.

``Interpolator`` owns everything between user frames and a network: model resolution (registry
name, checkpoint path or module), device and precision, replicate padding to the network's
multiple, RGB/BGR order per checkpoint, batching of timesteps, flip test-time augmentation and the
flow ``scale`` for very large frames.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emavfi.errors import EmavfiError
from emavfi.imageio import frames_to_tensor, tensor_to_frames
from emavfi.models.contract import to_channel_order
from emavfi.models.registry import DEFAULT_MODEL, ModelSpec, get_spec, list_models

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> cuda, then mps, then cpu; an unavailable device raises EmavfiError."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EmavfiError(f"device {name!r} is not available (no CUDA GPU found); use --device cpu")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise EmavfiError("device 'mps' is not available on this machine; use --device cpu")
    try:
        resolved = torch.device(name)
    except RuntimeError as exc:
        raise EmavfiError(f"unknown device {name!r} (use auto, cpu, cuda or mps)") from exc
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        count = torch.cuda.device_count()  # cuda:N past the last GPU fails only at .to(device)
        raise EmavfiError(f"device {name!r} is not available ({count} CUDA GPU(s) on this machine)")
    return resolved


def load_any_model(model: str | Path | nn.Module | None, device: torch.device) -> nn.Module:
    """A registry name, checkpoint path or module -> module in eval mode on ``device``."""
    if model is None:
        model = DEFAULT_MODEL
    if isinstance(model, nn.Module):
        module = model
    elif isinstance(model, (str, Path)) and str(model) in list_models(learned=False):
        from emavfi.models.registry import create_model

        module = create_model(str(model))
    else:
        if not Path(model).suffix and not Path(model).exists():
            get_spec(str(model))  # an unknown name fails here with a close-match hint
        from emavfi.models.checkpoints import load_model

        module = load_model(model, device="cpu")
    return module.to(device).eval()


class Interpolator:
    """Synthesise frames between two frames with a model or engine.

    Args:
        model: registry name, checkpoint path, ``nn.Module`` or None (the default model).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        scale: the model's ``flow_scale``: estimate flow at this fraction of the resolution
            (e.g. 0.5 for 4K); EMA-VFI refines at full size, RIFE (whose ``scale`` option this
            is) runs every block at this fraction and only warps and blends at full size.
            Frames are padded to ``pad_multiple / scale``. Engines ignore it.
        refine_at_scale: with ``scale`` < 1, refine at that fraction too; only the final warp
            and blend run at full size (about 3x faster at 1280x720 with scale 0.5, softer).
            Models without a refinement network (RIFE) already work that way: ignored.
        precision: ``auto`` (``default_precision``: fp16 autocast on CUDA, bf16 on CPUs with
            native bfloat16, fp32 elsewhere), ``fp32``, ``fp16``, ``bf16``. Warping grids and
            flow sums stay float32 in PyTorch under any of them; a graph backend lowers all of
            its operations, so under ``auto`` it runs float32 unless ``spec.graph_bf16``.
        tta: average with the prediction on horizontally and vertically flipped inputs.
        batch_size: at most this many (pair, timestep) items per network call.
        backend: ``auto``, ``torch``, ``onnxruntime`` or ``openvino`` (``emavfi.runtime``): the
            exported graph in ONNX Runtime or OpenVINO instead of PyTorch (CPU only; engines
            ignore it); ``auto`` times the ones installed on the first frames of a size and
            keeps the fastest.
    """

    def __init__(
        self,
        model: str | Path | nn.Module | None = None,
        device: str | torch.device = "auto",
        scale: float = 1.0,
        precision: str = "auto",
        tta: bool = False,
        batch_size: int = 4,
        refine_at_scale: bool = False,
        backend: str = "auto",
    ):
        if not 0 < scale <= 1:
            raise EmavfiError(f"scale must be in (0, 1], got {scale}")
        if precision not in PRECISIONS:
            raise EmavfiError(f"precision must be auto, fp32, fp16 or bf16, not {precision!r}")
        from emavfi.runtime.backends import BACKENDS

        if backend not in BACKENDS:
            raise EmavfiError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.device = resolve_device(device)
        self.model = load_any_model(model, self.device)
        self.spec: ModelSpec = getattr(self.model, "spec", None) or get_spec("blend")
        self.name = self.spec.name if not isinstance(model, (str, Path)) else str(model)
        self.scale = scale
        self.refine_at_scale = refine_at_scale
        self.tta = tta
        self.batch_size = max(1, batch_size)
        requested = precision
        if precision == "auto":
            precision = default_precision(self.device) if self.spec.learned else "fp32"
        self.precision = precision
        # A graph backend lowers every operation it chooses (warping too): under auto it gets
        # bf16 only for models measured to keep their quality that way (ModelSpec.graph_bf16).
        self.graph_precision = requested
        if requested == "auto":
            self.graph_precision = (
                "bf16" if precision == "bf16" and self.spec.graph_bf16 else "fp32"
            )
        # channels-last feeds the GPU's tensor cores without layout conversions in every conv.
        self._channels_last = self.device.type == "cuda" and self.spec.learned
        if self._channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        params = inspect.signature(self.model.forward).parameters
        takes_scale = "flow_scale" in params
        if scale != 1 and not takes_scale:
            log.info("model %s estimates no flow at reduced scale; --scale ignored", self.name)
        allowed = self.spec.flow_scales
        if takes_scale and allowed is not None and scale not in allowed:
            choices = ", ".join(f"{value:g}" for value in allowed)
            raise EmavfiError(f"model {self.name} takes scale {choices}, not {scale:g}")
        self._scale_kwargs: dict = {"flow_scale": scale} if takes_scale else {}
        # decode(..., last=True) lets a model free what only later timesteps would reuse.
        decode = getattr(self.model, "decode", None)
        self._decode_takes_last = (
            decode is not None and "last" in inspect.signature(decode).parameters
        )
        if refine_at_scale and "refine_at_scale" in params:
            self._scale_kwargs["refine_at_scale"] = True
        elif refine_at_scale and takes_scale:
            log.info("model %s refines nothing at full size: --fast only sets the scale", self.name)
        # A model estimating flow at ``scale`` needs the downscaled frame to meet its multiple.
        self.pad_multiple = self.spec.pad_multiple
        if takes_scale:
            self.pad_multiple = self.spec.pad_multiple_at(scale)
        if backend in ("onnxruntime", "openvino") and not self.spec.learned:
            log.info("%s is an engine (NumPy/OpenCV): --backend %s ignored", self.name, backend)
            backend = "torch"
        self.backend = backend
        # What ran the last call: auto's choice, and the precision that backend used.
        self.last_backend: str | None = None
        self.last_precision: str | None = None
        self._graph_runners: dict = {}  # backend name -> GraphRunner (one per backend)
        self._size_backend: dict[tuple, str] = {}  # auto's choice per (padded size, batch, times)
        if backend in ("onnxruntime", "openvino"):
            self._graph_runner(backend)  # export, check and compile now: fail before any work

    # -- tensors ---------------------------------------------------------------------------
    def __call__(
        self, img0: torch.Tensor, img1: torch.Tensor, timesteps: Sequence[float]
    ) -> list[torch.Tensor]:
        return self.interpolate(img0, img1, timesteps)

    @torch.inference_mode()
    def interpolate(
        self, img0: torch.Tensor, img1: torch.Tensor, timesteps: Sequence[float]
    ) -> list[torch.Tensor]:
        """img0, img1: (B, 3, H, W) or (3, H, W) RGB in [0, 1] (uint8 is scaled).

        Returns one (B, 3, H, W) float RGB tensor in [0, 1] on the CPU per timestep.
        """
        img0, img1 = _as_batch(img0), _as_batch(img1)
        if img0.shape != img1.shape:
            raise EmavfiError(
                f"frames differ in size: {tuple(img0.shape[-2:])} vs {tuple(img1.shape[-2:])}"
            )
        times = [float(t) for t in timesteps]
        for t in times:
            if not 0 < t < 1:
                raise EmavfiError(f"timestep {t} is outside (0, 1)")
        if not self.spec.arbitrary_t and any(abs(t - 0.5) > 1e-6 for t in times):
            raise EmavfiError(f"model {self.name} only synthesises the middle frame (t=0.5)")
        img0, img1 = img0.to(self.device), img1.to(self.device)
        outputs: list[list[torch.Tensor]] = [[] for _ in times]
        # Pairs go through the network in chunks; each chunk is encoded once for all timesteps.
        for start in range(0, img0.shape[0], self.batch_size):
            chunk = slice(start, start + self.batch_size)
            for k, pred in enumerate(self._predict(img0[chunk], img1[chunk], times)):
                outputs[k].append(pred.float().cpu())
        return [torch.cat(parts) for parts in outputs]

    def _predict(
        self, img0: torch.Tensor, img1: torch.Tensor, times: list[float]
    ) -> list[torch.Tensor]:
        preds = self._forward_padded(img0, img1, times)
        if self.tta:
            for dims in ((3,), (2,)):
                flipped = self._forward_padded(img0.flip(dims), img1.flip(dims), times)
                preds = [p + f.flip(dims) for p, f in zip(preds, flipped)]
            preds = [p / 3 for p in preds]
        return [p.clamp(0, 1) for p in preds]

    def _forward_padded(
        self, img0: torch.Tensor, img1: torch.Tensor, times: list[float]
    ) -> list[torch.Tensor]:
        h, w = img0.shape[-2:]
        pad_h, pad_w = (-h) % self.pad_multiple, (-w) % self.pad_multiple
        if pad_h or pad_w:
            img0 = F.pad(img0, (0, pad_w, 0, pad_h), mode="replicate")
            img1 = F.pad(img1, (0, pad_w, 0, pad_h), mode="replicate")
        img0 = to_channel_order(img0, self.spec.channel_order)
        img1 = to_channel_order(img1, self.spec.channel_order)
        backend = self.last_backend = self._backend_for(img0, img1, times)
        if backend == "torch":
            self.last_precision = self.precision
            preds = self.run_torch(img0, img1, times, self.precision)
        else:
            runner = self._graph_runners[backend]
            self.last_precision = runner.session.precision
            preds = runner(img0, img1, times)
        preds = [to_channel_order(p, self.spec.channel_order) for p in preds]
        return [p[..., :h, :w].float() for p in preds]

    def run_torch(
        self, img0: torch.Tensor, img1: torch.Tensor, times: list[float], precision: str
    ) -> list[torch.Tensor]:
        """The PyTorch module at ``precision`` on padded frames in its channel order.

        img0, img1: (B, 3, H, W) on the device, H and W multiples of ``pad_multiple``. Returns
        one (B, 3, H, W) prediction per timestep (the graph backends are checked against it).
        """
        if self._channels_last:
            img0 = img0.contiguous(memory_format=torch.channels_last)
            img1 = img1.contiguous(memory_format=torch.channels_last)
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        batch = img0.shape[0]
        preds = []
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            if hasattr(self.model, "encode") and hasattr(self.model, "decode"):
                features = self.model.encode(img0, img1, **self._scale_kwargs)
                for k, t in enumerate(times):
                    timestep = torch.full((batch,), t, device=img0.device)
                    last = {"last": k == len(times) - 1} if self._decode_takes_last else {}
                    preds.append(self.model.decode(img0, img1, timestep, features, **last))
            else:
                for t in times:
                    preds.append(
                        self.model(
                            img0,
                            img1,
                            torch.full((batch,), t, device=img0.device),
                            **self._scale_kwargs,
                        )
                    )
        return preds

    # -- graph backends (emavfi.runtime) ---------------------------------------------------
    def _graph_runner(self, backend: str):
        """The checked GraphRunner of ``backend`` (exported and compiled on first use)."""
        from emavfi.runtime import backends

        if backend not in self._graph_runners:
            why = backends.eligible(self.model, self.device, self.scale, self.refine_at_scale)
            if why:
                raise EmavfiError(f"backend {backend} cannot run {self.name}: {why}")
            self._graph_runners[backend] = backends.open_runner(
                backend,
                self.model,
                lambda a, b, times: self.run_torch(a, b, times, "fp32"),
                precision=self.graph_precision,
                flow_scale=self.scale,
                refine_at_scale=self.refine_at_scale,
            )
        return self._graph_runners[backend]

    def _backend_for(self, img0: torch.Tensor, img1: torch.Tensor, times: list[float]) -> str:
        """``torch`` or a graph backend for these padded frames (auto: timed once per size)."""
        from emavfi.runtime import backends

        if self.backend != "auto":
            return self.backend
        key = (*img0.shape[2:], len(times))  # the batch size does not change the ranking
        if key in self._size_backend:
            return self._size_backend[key]
        choice = "torch"
        present = [b for b in backends.GRAPH_BACKENDS if backends.installed(b)]
        pixels = img0.shape[2] * img0.shape[3]
        big = pixels >= backends.AUTO_MIN_PIXELS
        # A graph runs the whole frame at once: where PyTorch refines in tiles (above 1080p),
        # auto keeps PyTorch and its bounded memory (4K within 4 GB).
        tiled = pixels > (getattr(self.model, "refine_tile_pixels", None) or float("inf"))
        why = backends.eligible(self.model, self.device, self.scale, self.refine_at_scale)
        if present and big and not tiled and not why:
            candidates = {"torch": lambda a, b, t: self.run_torch(a, b, t, self.precision)}
            for name in present:
                try:
                    candidates[name] = self._graph_runner(name)
                except Exception as exc:  # noqa: BLE001 - auto falls back; explicit raises
                    log.warning("backend %s not used: %s", name, str(exc).splitlines()[0])
            if len(candidates) > 1:
                description = {
                    "model": self.spec.name,
                    "weights": backends.weights_key(self.model),
                    "size": list(img0.shape[2:]),
                    "timesteps": len(times),
                    "precision": [self.precision, self.graph_precision],
                    "scale": self.scale,
                    "refine_at_scale": self.refine_at_scale,
                }
                choice = backends.choose(candidates, description, img0, img1, times)
        self._size_backend[key] = choice
        return choice

    # -- uint8 arrays ----------------------------------------------------------------------
    def frames(
        self, frame0: np.ndarray, frame1: np.ndarray, timesteps: Sequence[float]
    ) -> list[np.ndarray]:
        """HxWx3 uint8 RGB arrays -> one HxWx3 uint8 RGB array per timestep."""
        a, b = _array_to_tensor(frame0), _array_to_tensor(frame1)
        return [tensor_to_frames(out[0]) for out in self.interpolate(a, b, timesteps)]


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX; not emulated)."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is None:  # torch < 2.10
        return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())
    caps = capabilities()
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def default_precision(device: torch.device) -> str:
    """``auto`` precision of a network: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32."""
    if device.type == "cuda":
        return "fp16"
    if device.type == "cpu" and cpu_has_bf16():
        return "bf16"
    return "fp32"


def _as_batch(image: torch.Tensor) -> torch.Tensor:
    if image.dtype == torch.uint8:
        image = image.float() / 255
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[1] != 3:
        raise EmavfiError(f"expected frames of shape (B, 3, H, W), got {tuple(image.shape)}")
    return image.float()


def _array_to_tensor(frame: np.ndarray) -> torch.Tensor:
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise EmavfiError(f"expected an HxWx3 image, got shape {frame.shape}")
    return frames_to_tensor(frame[..., :3])[None]
