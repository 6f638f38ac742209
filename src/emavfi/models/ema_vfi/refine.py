"""The refinement U-Net (EMA-VFI Sec. 3.4): a residual that corrects the blended frame.

Its encoder takes the frames, the warped frames, the mask logit and the flow at full
resolution, and at each of the five scales the context (appearance) features of both frames
warped to time t. Its output in [0, 1] is read as a residual ``2 * out - 1``.
Attribute names follow the published checkpoints (``down0``..``down3``, ``up0``..``up3``).
"""

from __future__ import annotations

import torch
from torch import nn

from emavfi.models.ema_vfi.flow_estimation import conv_prelu

# img0, img1, warped img0, warped img1 (3 each), mask logit (1), flow (4)
IMAGE_INPUT_DIM = 17


class DownBlock(nn.Module):
    """Stride-2 conv + conv (each with PReLU): (B, in, H, W) -> (B, out, H/2, W/2)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.conv1 = conv_prelu(in_dim, out_dim, stride=2)
        self.conv2 = conv_prelu(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


def up_block(in_dim: int, out_dim: int) -> nn.Sequential:
    """4x4 stride-2 transposed conv + PReLU: (B, in, H, W) -> (B, out, 2H, 2W)."""
    return nn.Sequential(nn.ConvTranspose2d(in_dim, out_dim, 4, 2, 1), nn.PReLU(out_dim))


class RefineUNet(nn.Module):
    """``forward(inputs, context0, context1)`` -> (B, 3, H, W) in [0, 1].

    ``inputs`` is (B, 17, H, W) (see IMAGE_INPUT_DIM); ``context0`` / ``context1`` are the
    five warped appearance maps of each frame, (B, c/2 * 2**i, H/2**i, W/2**i), with
    ``c = 2F``.
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        self.down0 = DownBlock(IMAGE_INPUT_DIM + c, 2 * c)
        self.down1 = DownBlock(4 * c, 4 * c)
        self.down2 = DownBlock(8 * c, 8 * c)
        self.down3 = DownBlock(16 * c, 16 * c)
        self.up0 = up_block(32 * c, 8 * c)
        self.up1 = up_block(16 * c, 4 * c)
        self.up2 = up_block(8 * c, 2 * c)
        self.up3 = up_block(4 * c, c)
        self.conv = nn.Conv2d(c, 3, 3, 1, 1)

    def forward(
        self, inputs: torch.Tensor, context0: list[torch.Tensor], context1: list[torch.Tensor]
    ) -> torch.Tensor:
        skip0 = self.down0(torch.cat((inputs, context0[0], context1[0]), 1))
        skip1 = self.down1(torch.cat((skip0, context0[1], context1[1]), 1))
        skip2 = self.down2(torch.cat((skip1, context0[2], context1[2]), 1))
        skip3 = self.down3(torch.cat((skip2, context0[3], context1[3]), 1))
        x = self.up0(torch.cat((skip3, context0[4], context1[4]), 1))
        x = self.up1(torch.cat((x, skip2), 1))
        x = self.up2(torch.cat((x, skip1), 1))
        x = self.up3(torch.cat((x, skip0), 1))
        return torch.sigmoid(self.conv(x))
