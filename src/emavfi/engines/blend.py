"""The ``blend`` engine: a linear cross-fade, ``(1 - t) * img0 + t * img1``."""

from __future__ import annotations

import torch
from torch import nn

from emavfi.models.contract import InterpolationOutput, timestep_tensor


class BlendEngine(nn.Module):
    """Cross-fade baseline with the model contract (no flow, no mask)."""

    def forward(
        self,
        img0: torch.Tensor,
        img1: torch.Tensor,
        timestep,
        return_aux: bool = False,
        **_: object,
    ):
        """img0, img1: (B, 3, H, W) in [0, 1]; timestep: float or (B,). Returns (B, 3, H, W)."""
        t = timestep_tensor(timestep, img0)
        pred = img0 * (1 - t) + img1 * t
        if return_aux:
            return InterpolationOutput(pred=pred, merged=pred)
        return pred
