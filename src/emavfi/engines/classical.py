"""The ``classical`` engine: DIS optical flow, warping to time t, occlusion-aware blending.

Design (no learning):
1. DIS flow (Kroeger et al., ECCV 2016, OpenCV) both ways: ``f01`` (img0 -> img1), ``f10``.
2. Backward flows from time t by the linear-motion approximation of Super SloMo
   (Jiang et al., CVPR 2018):
   ``flow_t0 = -(1 - t) t f01 + t^2 f10`` and ``flow_t1 = (1 - t)^2 f01 - t (1 - t) f10``.
3. Both frames are warped to t (``cv2.remap``, bilinear, border replicate).
4. Blending weights come from forward-backward consistency: a pixel of img0 whose flow does not
   come back (``|f01(x) + f10(x + f01(x))|`` large) is likely occluded in img1, so it is trusted
   less; the weights are ``(1 - t) c0`` and ``t c1``, where ``c = exp(-err^2 / (2 sigma^2))``
   sampled at the warped positions.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from emavfi.models.contract import InterpolationOutput, timestep_tensor

_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def dis_flow(src_gray: np.ndarray, dst_gray: np.ndarray, preset: str = "medium") -> np.ndarray:
    """DIS flow from ``src`` to ``dst``: HxW uint8 each -> HxWx2 float32, ``src(x) ~ dst(x + f)``."""
    dis = cv2.DISOpticalFlow_create(_PRESETS[preset])
    return dis.calc(src_gray, dst_gray, None)


def _remap(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: ``out(x) = image(x + flow(x))`` (bilinear, border replicate)."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        image,
        grid_x + flow[..., 0],
        grid_y + flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _consistency(f_ab: np.ndarray, f_ba: np.ndarray, sigma: float) -> np.ndarray:
    """Per-pixel reliability in [0, 1] of ``f_ab`` from the forward-backward round trip."""
    err = np.linalg.norm(f_ab + _remap(f_ba, f_ab), axis=2)
    return np.exp(-(err**2) / (2 * sigma**2)).astype(np.float32)


def _to_gray_u8(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2GRAY)


def classical_flow(
    img0: torch.Tensor, img1: torch.Tensor, timestep: torch.Tensor, preset: str = "medium"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The engine's flow at t and its blending mask as a logit, for a network to refine.

    img0, img1: (B, 3, H, W) RGB in [0, 1]; timestep: float or (B,) / (B, 1, 1, 1).
    Returns flow (B, 4, H, W) (network convention) and mask logit (B, 1, H, W), no gradient.
    """
    engine = ClassicalEngine(preset)
    return engine.flows_at(engine.pair_flows(img0, img1), timestep, img0)


def _to_numpy_frames(images: torch.Tensor) -> list[np.ndarray]:
    """(B, 3, H, W) tensor -> B contiguous HxWx3 float32 arrays."""
    array = images.detach().float().permute(0, 2, 3, 1).cpu().numpy()
    return [np.ascontiguousarray(item) for item in array]


class ClassicalEngine(nn.Module):
    """DIS-flow interpolation with the model contract; runs on the CPU with NumPy/OpenCV."""

    def __init__(self, preset: str = "medium", sigma: float = 1.5):
        super().__init__()
        if preset not in _PRESETS:
            raise ValueError(f"preset must be one of {sorted(_PRESETS)}")
        self.preset = preset
        self.sigma = sigma

    def _pair(self, img0: np.ndarray, img1: np.ndarray) -> tuple[np.ndarray, ...]:
        """The timestep-free part: DIS flows both ways and their consistency maps (HxW)."""
        g0, g1 = _to_gray_u8(img0), _to_gray_u8(img1)
        f01, f10 = dis_flow(g0, g1, self.preset), dis_flow(g1, g0, self.preset)
        return f01, f10, _consistency(f01, f10, self.sigma), _consistency(f10, f01, self.sigma)

    @staticmethod
    def _at(pair: tuple[np.ndarray, ...], t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Backward flows from t (HxWx2 each) and img0's blending weight (HxW) from ``_pair``."""
        f01, f10, cons01, cons10 = pair
        flow_t0 = -(1 - t) * t * f01 + t * t * f10
        flow_t1 = (1 - t) ** 2 * f01 - t * (1 - t) * f10
        w0 = (1 - t) * (_remap(cons01, flow_t0) + 1e-3)
        w1 = t * (_remap(cons10, flow_t1) + 1e-3)
        return flow_t0, flow_t1, w0 / (w0 + w1)

    def pair_flows(self, img0: torch.Tensor, img1: torch.Tensor) -> list[tuple[np.ndarray, ...]]:
        """Per batch item, the timestep-free DIS results of (B, 3, H, W) RGB frames (reusable)."""
        return [self._pair(a, b) for a, b in zip(_to_numpy_frames(img0), _to_numpy_frames(img1))]

    def flows_at(
        self, pairs: list[tuple[np.ndarray, ...]], timestep, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow (B, 4, H, W) and mask logit (B, 1, H, W) at ``timestep`` from ``pair_flows``."""
        times = timestep_tensor(timestep, like).flatten().tolist()
        results = [self._at(pair, t) for pair, t in zip(pairs, times)]
        flow = np.stack([np.concatenate(r[:2], axis=2) for r in results])
        weight0 = np.clip(np.stack([r[2] for r in results]), 1e-3, 1 - 1e-3)
        flow_tensor = torch.from_numpy(flow).permute(0, 3, 1, 2)
        mask_logit = torch.from_numpy(np.log(weight0 / (1 - weight0)))[:, None]
        return flow_tensor.to(like.device, like.dtype), mask_logit.to(like.device, like.dtype)

    def _one(self, img0: np.ndarray, img1: np.ndarray, t: float):
        """img0, img1: HxWx3 float32 in [0, 1]. Returns (pred, flow HxWx4, mask HxW)."""
        flow_t0, flow_t1, mask = self._at(self._pair(img0, img1), t)
        warped0, warped1 = _remap(img0, flow_t0), _remap(img1, flow_t1)
        pred = warped0 * mask[..., None] + warped1 * (1 - mask[..., None])
        return pred, np.concatenate([flow_t0, flow_t1], axis=2), mask

    def forward(
        self,
        img0: torch.Tensor,
        img1: torch.Tensor,
        timestep,
        return_aux: bool = False,
        **_: object,
    ):
        """img0, img1: (B, 3, H, W) RGB in [0, 1]; timestep: float or (B,). Returns (B, 3, H, W)."""
        times = timestep_tensor(timestep, img0).flatten().tolist()
        frames = zip(_to_numpy_frames(img0), _to_numpy_frames(img1), times)
        results = [self._one(a, b, t) for a, b, t in frames]
        pred = torch.from_numpy(np.stack([r[0] for r in results])).permute(0, 3, 1, 2)
        pred = pred.clamp(0, 1).to(device=img0.device, dtype=img0.dtype)
        if not return_aux:
            return pred
        flow = (
            torch.from_numpy(np.stack([r[1] for r in results])).permute(0, 3, 1, 2).to(img0.device)
        )
        mask = torch.from_numpy(np.stack([r[2] for r in results]))[:, None].to(img0.device)
        return InterpolationOutput(pred=pred, merged=pred, flow=flow, mask=mask)
