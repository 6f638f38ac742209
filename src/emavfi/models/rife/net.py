"""RIFE v4 (Huang et al., ECCV 2022; Practical-RIFE v4.25 by hzwer): our implementation.

An IFNet: five ``IFBlock``s estimate the bidirectional flow at time t and a fusion mask, coarse
to fine. Each block works at ``1 / scale_i`` of the frame (16, 8, 4, 2, 1 for ``scale = 1``),
reads the frames warped with the current flow, the warped 4-channel ``Head`` features of both
frames, the timestep plane, the current mask and the previous block's 8 feature channels, and
adds a flow increment; its mask replaces the previous one. The frame is the mask blend of the
two warped inputs (no refinement network).

The reference's ``scale`` option is the contract's ``flow_scale`` here: with ``flow_scale = S``
the blocks run at ``16/S, 8/S, 4/S, 2/S, 1/S`` (S = 0.5 for 4K-like frames: coarser motion
search, every block at half the usual size); only the final warp and blend are at full size. S
is a power of two.

Frames are (B, 3, H, W) in [0, 1], BGR for the released checkpoints (read with OpenCV); H and W
must be multiples of ``PAD_MULTIPLE / flow_scale`` (the Interpolator pads). Module names
(``encode``, ``block0``..``block4``) are the released checkpoint's, so ``flownet.pkl`` loads as
it is (less its training-time ``teacher.*`` and unused ``caltime.*`` entries).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from emavfi.models.contract import InterpolationOutput, backward_warp, resize_flow, timestep_plane

FEATURE_CHANNELS = 4  # the Head's output per frame
BLOCK_FEATURES = 8  # feature channels each block hands to the next
BLOCK_SCALES = (16, 8, 4, 2, 1)
# block0 works at 1/16 of the frame and halves that twice more: sides must be multiples of 64.
PAD_MULTIPLE = 4 * BLOCK_SCALES[0]
MAX_WIDTH = 1024  # a block wider than this is no RIFE (checkpoint shapes are checked against it)


def _conv(in_dim: int, out_dim: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv + LeakyReLU(0.2)."""
    return nn.Sequential(nn.Conv2d(in_dim, out_dim, 3, stride, 1), nn.LeakyReLU(0.2))


def _resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class Head(nn.Module):
    """Per-frame feature encoder: (B, 3, H, W) -> (B, 4, H, W)."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn0 = nn.Conv2d(3, 16, 3, 2, 1)
        self.cnn1 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn2 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn3 = nn.ConvTranspose2d(16, FEATURE_CHANNELS, 4, 2, 1)
        self.relu = nn.LeakyReLU(0.2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.cnn0(image))
        x = self.relu(self.cnn1(x))
        x = self.relu(self.cnn2(x))
        return self.cnn3(x)


class ResConv(nn.Module):
    """3x3 residual conv with a learned per-channel gain ``beta``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.relu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) * self.beta + x)


class IFBlock(nn.Module):
    """One refinement stage at ``1 / scale`` of the frame.

    ``forward(x, flow, scale)``: x (B, in_dim, H, W), flow (B, 4, H, W) or None -> flow
    (increment when ``flow`` is given) (B, 4, H, W) in pixels, mask logit (B, 1, H, W), features
    (B, 8, H, W).
    """

    def __init__(self, in_dim: int, width: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv(in_dim, width // 2, 2), _conv(width // 2, width, 2))
        self.convblock = nn.Sequential(*(ResConv(width) for _ in range(8)))
        out_dim = 4 + 1 + BLOCK_FEATURES
        self.lastconv = nn.Sequential(
            nn.ConvTranspose2d(width, 4 * out_dim, 4, 2, 1), nn.PixelShuffle(2)
        )

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, scale: float):
        x = _resize(x, 1.0 / scale)
        if flow is not None:
            # The flow is float32 (see IFNet.forward); the convolutions take x's dtype.
            x = torch.cat((x, resize_flow(flow, x.shape[-2:]).to(x.dtype)), 1)
        out = self.lastconv(self.convblock(self.conv0(x)))
        out = _resize(out, scale)
        return out[:, :4] * scale, out[:, 4:5], out[:, 5:]


class IFNet(nn.Module):
    """The RIFE v4 IFNet (Practical-RIFE v4.25: block widths 192, 128, 96, 64, 32).

    Args:
        widths: channels of the five blocks (even numbers in [2, ``MAX_WIDTH``]).
    """

    def __init__(self, widths: list[int] | tuple[int, ...] = (192, 128, 96, 64, 32)) -> None:
        super().__init__()
        check_widths(widths)
        self.encode = Head()
        first_in = 3 + 3 + 2 * FEATURE_CHANNELS + 1
        later_in = first_in + 1 + BLOCK_FEATURES + 4  # + mask, block features, flow
        for index, width in enumerate(widths):
            self.add_module(f"block{index}", IFBlock(first_in if index == 0 else later_in, width))

    def forward(
        self,
        img0: torch.Tensor,
        img1: torch.Tensor,
        timestep: float | torch.Tensor = 0.5,
        return_aux: bool = False,
        flow_scale: float = 1.0,
    ) -> torch.Tensor | InterpolationOutput:
        """Interpolate (B, 3, H, W) frames at ``timestep`` (float, (B,) or (B, 1, 1, 1)).

        ``flow_scale``: the reference's ``scale`` (a power of two, see the module docstring).
        """
        check_flow_scale(flow_scale)
        t_plane = timestep_plane(timestep, img0)
        feat0, feat1 = self.encode(torch.cat((img0, img1), 0)).chunk(2, 0)
        warped0, warped1 = img0, img1
        flow = mask = features = None
        flows, merged_stages = [], []
        for index, block_scale in enumerate(BLOCK_SCALES):
            block = getattr(self, f"block{index}")
            if flow is None:
                inputs = torch.cat((img0, img1, feat0, feat1, t_plane), 1)
                flow, mask, features = block(inputs, None, block_scale / flow_scale)
                flow = flow.float()  # flows add up over five blocks: float32 under autocast
            else:
                wf0 = backward_warp(feat0, flow[:, :2])
                wf1 = backward_warp(feat1, flow[:, 2:4])
                inputs = torch.cat((warped0, warped1, wf0, wf1, t_plane, mask, features), 1)
                delta, mask, features = block(inputs, flow, block_scale / flow_scale)
                flow = flow + delta.float()
            warped0 = backward_warp(img0, flow[:, :2])
            warped1 = backward_warp(img1, flow[:, 2:4])
            flows.append(flow)
            if return_aux:
                weight = torch.sigmoid(mask)
                merged_stages.append(warped0 * weight + warped1 * (1 - weight))
        weight0 = torch.sigmoid(mask)
        merged = warped0 * weight0 + warped1 * (1 - weight0)
        if not return_aux:
            return merged.clamp(0, 1)
        return InterpolationOutput(
            pred=merged.clamp(0, 1),
            merged=merged,
            flow=flow,
            mask=weight0,
            flow_stages=flows,
            merged_stages=merged_stages,
        )


def check_widths(widths: list[int] | tuple[int, ...]) -> None:
    """ValueError unless ``widths`` are five even numbers in [2, ``MAX_WIDTH``]."""
    if len(widths) != len(BLOCK_SCALES) or any(
        not isinstance(w, int) or w % 2 or not 2 <= w <= MAX_WIDTH for w in widths
    ):
        raise ValueError(
            f"RIFE widths must be {len(BLOCK_SCALES)} even numbers in [2, {MAX_WIDTH}], "
            f"not {list(widths)}"
        )


def check_flow_scale(flow_scale: float) -> None:
    """ValueError unless ``flow_scale`` is a power of two from 1/16 to 4 (the block sizes divide)."""
    exponent = math.log2(flow_scale) if flow_scale > 0 else 0.5
    if exponent != round(exponent) or not -4 <= exponent <= 2:
        raise ValueError(f"RIFE flow_scale must be a power of two in [1/16, 4], not {flow_scale}")
