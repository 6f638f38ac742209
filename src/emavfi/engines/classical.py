"""The ``classical`` engine: DIS optical flow, warping to time t, occlusion-aware blending.

Design (no learning; the flow parts live in ``emavfi.flow.dis``, shared with EMA-VFI's
``flow_init="dis"`` warm start and the training teacher):
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

import numpy as np
import torch
from torch import nn

from emavfi.flow import dis
from emavfi.models.contract import InterpolationOutput, timestep_tensor


class ClassicalEngine(nn.Module):
    """DIS-flow interpolation with the model contract; runs on the CPU with NumPy/OpenCV."""

    def __init__(self, preset: str = "medium", sigma: float = dis.SIGMA):
        super().__init__()
        if preset not in dis.PRESETS:
            raise ValueError(f"preset must be one of {sorted(dis.PRESETS)}")
        self.preset = preset
        self.sigma = sigma

    def _one(self, img0: np.ndarray, img1: np.ndarray, t: float):
        """img0, img1: HxWx3 float32 in [0, 1]. Returns (pred, flow HxWx4, mask HxW)."""
        pair = dis.pair_flows(img0, img1, self.preset, self.sigma)
        flow_t0, flow_t1, mask = dis.flows_at(pair, t)
        warped0, warped1 = dis.remap(img0, flow_t0), dis.remap(img1, flow_t1)
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
        frames = zip(dis.to_numpy_frames(img0), dis.to_numpy_frames(img1), times)
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
