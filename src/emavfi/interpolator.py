"""The interpolation API: any frame size, any timesteps, any registered model or checkpoint.

``Interpolator`` owns everything between user frames and a network: model resolution (registry
name, checkpoint path or module), device and precision, replicate padding to the network's
multiple, RGB/BGR order per checkpoint, batching of timesteps, flip test-time augmentation and the
flow ``scale`` for very large frames.
"""

from __future__ import annotations

import inspect
import logging
import math
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
        precision: ``auto`` (fp16 autocast on CUDA, fp32 elsewhere), ``fp32``, ``fp16``, ``bf16``.
        tta: average with the prediction on horizontally and vertically flipped inputs.
        batch_size: at most this many (pair, timestep) items per network call.
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
    ):
        if not 0 < scale <= 1:
            raise EmavfiError(f"scale must be in (0, 1], got {scale}")
        if precision not in ("auto", "fp32", "fp16", "bf16"):
            raise EmavfiError(f"precision must be auto, fp32, fp16 or bf16, not {precision!r}")
        self.device = resolve_device(device)
        self.model = load_any_model(model, self.device)
        self.spec: ModelSpec = getattr(self.model, "spec", None) or get_spec("blend")
        self.name = self.spec.name if not isinstance(model, (str, Path)) else str(model)
        self.scale = scale
        self.refine_at_scale = refine_at_scale
        self.tta = tta
        self.batch_size = max(1, batch_size)
        if precision == "auto":
            precision = "fp16" if self.device.type == "cuda" and self.spec.learned else "fp32"
        self.precision = precision
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
        if refine_at_scale and "refine_at_scale" in params:
            self._scale_kwargs["refine_at_scale"] = True
        elif refine_at_scale and takes_scale:
            log.info("model %s refines nothing at full size: --fast only sets the scale", self.name)
        # A model estimating flow at ``scale`` needs the downscaled frame to meet its multiple.
        self.pad_multiple = self.spec.pad_multiple
        if takes_scale:
            self.pad_multiple = math.ceil(self.pad_multiple / scale)

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
        if self._channels_last:
            img0 = img0.contiguous(memory_format=torch.channels_last)
            img1 = img1.contiguous(memory_format=torch.channels_last)
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        batch = img0.shape[0]
        preds = []
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            if hasattr(self.model, "encode") and hasattr(self.model, "decode"):
                features = self.model.encode(img0, img1, **self._scale_kwargs)
                for t in times:
                    preds.append(
                        self.model.decode(
                            img0, img1, torch.full((batch,), t, device=img0.device), features
                        )
                    )
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
        preds = [to_channel_order(p, self.spec.channel_order) for p in preds]
        return [p[..., :h, :w].float() for p in preds]

    # -- uint8 arrays ----------------------------------------------------------------------
    def frames(
        self, frame0: np.ndarray, frame1: np.ndarray, timesteps: Sequence[float]
    ) -> list[np.ndarray]:
        """HxWx3 uint8 RGB arrays -> one HxWx3 uint8 RGB array per timestep."""
        a, b = _array_to_tensor(frame0), _array_to_tensor(frame1)
        return [tensor_to_frames(out[0]) for out in self.interpolate(a, b, timesteps)]


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
