"""Multi-attention fusion with deformable convolution (our addition to EMA-VFI).

The original product description adds a stage that "adaptively fuses the features with
deformable convolution, highlighting the important information". Here it sits between the
warping of the context features and the refinement U-Net: at the three CNN scales, the two
warped context maps are fused by a modulated deformable 3x3 convolution
(``torchvision.ops.DeformConv2d``) whose sampling offsets and modulation mask (a spatial
attention per tap) are predicted from the warped features, the flow and the fusion mask. The
result is added to each warped map as a residual, so the U-Net's input shapes, and with them
the published weights, are unchanged.

The offset/mask predictor is zero-initialised: at the start the offsets are 0 and the
modulation is ``2 * sigmoid(0) = 1``, so the stage begins as a plain 3x3 convolution.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import DeformConv2d

FUSED_LEVELS = 3  # the full, 1/2 and 1/4 scale context maps
KERNEL = 3
OFFSET_GROUPS = 2  # one set of offsets for each frame's channels


class DeformableLevelFusion(nn.Module):
    """Fuse two warped context maps (B, C, h, w) of one scale.

    ``forward(context0, context1, flow, mask)`` with flow (B, 4, h, w) and mask logit
    (B, 1, h, w) -> fused (B, C, h, w) for each frame.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = KERNEL * KERNEL * OFFSET_GROUPS
        self.offset_mask = nn.Conv2d(2 * channels + 5, 3 * taps, KERNEL, 1, KERNEL // 2)
        nn.init.zeros_(self.offset_mask.weight)
        nn.init.zeros_(self.offset_mask.bias)
        self.deform = DeformConv2d(2 * channels, 2 * channels, KERNEL, 1, KERNEL // 2)

    def forward(
        self,
        context0: torch.Tensor,
        context1: torch.Tensor,
        flow: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pair = torch.cat([context0, context1], 1)
        predicted = self.offset_mask(torch.cat([pair, flow, mask], 1))
        taps = KERNEL * KERNEL * OFFSET_GROUPS
        offsets, modulation = predicted[:, : 2 * taps], predicted[:, 2 * taps :]
        fused = self.deform(pair, offsets, 2 * torch.sigmoid(modulation))
        residual0, residual1 = fused.chunk(2, dim=1)
        return context0 + residual0, context1 + residual1


class DeformableFusion(nn.Module):
    """Apply ``DeformableLevelFusion`` to the first ``FUSED_LEVELS`` context scales.

    ``forward(context0, context1, flows, mask)``: lists of (B, C_i, H/2**i, W/2**i) per frame,
    ``flows`` the matching list of (B, 4, H/2**i, W/2**i), mask logit (B, 1, H, W) -> the two
    lists with their first levels fused.
    """

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        self.levels = nn.ModuleList(DeformableLevelFusion(c) for c in channels[:FUSED_LEVELS])

    def forward(
        self,
        context0: list[torch.Tensor],
        context1: list[torch.Tensor],
        flows: list[torch.Tensor],
        mask: torch.Tensor,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        context0, context1 = list(context0), list(context1)
        for level, fusion in enumerate(self.levels):
            level_mask = nn.functional.interpolate(
                mask, size=flows[level].shape[2:], mode="bilinear", align_corners=False
            )
            context0[level], context1[level] = fusion(
                context0[level], context1[level], flows[level], level_mask
            )
        return context0, context1
