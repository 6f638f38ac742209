"""The refinement U-Net (EMA-VFI Sec. 3.4): a residual that corrects the blended frame.

Its encoder takes the frames, the warped frames, the mask logit and the flow at full
resolution, and at each of the five scales the context (appearance) features of both frames
warped to time t. Its output in [0, 1] is read as a residual ``2 * out - 1``.
Attribute names follow the published checkpoints (``down0``..``down3``, ``up0``..``up3``).

Large frames are refined in tiles (``tiles``): each tile is the U-Net's input cut around a core
with a margin of ``HALO`` pixels, wider than the U-Net's receptive field (about 80 pixels each
side: four stride-2 stages of 3x3 convolutions, four 4x4 transposed ones), and only the core of
its output is kept. Tile corners are multiples of 32, so every stride-2 stage samples the same
pixels as on the whole frame: a core is the whole frame's output there, to float rounding, and
there is nothing to blend and no seam.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from emavfi.models.ema_vfi.flow_estimation import conv_prelu

# img0, img1, warped img0, warped img1 (3 each), mask logit (1), flow (4)
IMAGE_INPUT_DIM = 17
HALO = 128  # margin of a tile around its core: more than the receptive field's radius
TILE_MULTIPLE = 32  # tile corners: the U-Net's and the context pyramid's 1/16 grid, with room


def tiles(height: int, width: int, max_core_pixels: int) -> list[tuple[slice, slice, slice, slice]]:
    """Cut a height x width frame (multiples of 32) into tiles of cores of at most about
    ``max_core_pixels``: ``(rows, cols, core_rows, core_cols)`` per tile, the slices of the tile
    in the frame and of its core in the tile. The cores cover the frame once."""
    side = max(TILE_MULTIPLE, math.isqrt(max_core_pixels) // TILE_MULTIPLE * TILE_MULTIPLE)
    out = []
    for top, bottom in _cores(height, side):
        for left, right in _cores(width, side):
            y0, x0 = max(0, top - HALO), max(0, left - HALO)
            y1, x1 = min(height, bottom + HALO), min(width, right + HALO)
            core = (slice(top - y0, bottom - y0), slice(left - x0, right - x0))
            out.append((slice(y0, y1), slice(x0, x1), *core))
    return out


def _cores(size: int, side: int) -> list[tuple[int, int]]:
    """``size`` split into about equal parts of at most ``side``, at multiples of 32."""
    count = -(-size // side)
    bounds = [round(i * size / count / TILE_MULTIPLE) * TILE_MULTIPLE for i in range(count)]
    return list(zip(bounds, bounds[1:] + [size]))


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
