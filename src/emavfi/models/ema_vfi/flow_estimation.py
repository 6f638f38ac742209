"""Multi-scale motion estimation (EMA-VFI Sec. 3.3): bidirectional flow and fusion mask at t.

Two heads refine coarse to fine. The first works from the 1/16-scale features, the second from
the 1/8-scale ones plus the images warped with the first estimate. Each head scales the two
frames' motion features by ``t`` and ``1 - t`` (the linear-motion assumption that gives
arbitrary-time interpolation), upsamples them 4x with pixel shuffles, predicts at
``scale / 4`` resolution and upsamples its output to full resolution.

Flows are (B, 4, H, W) in pixels: channels 0-1 from time t to img0, 2-3 from t to img1. The
mask is a (B, 1, H, W) logit: ``sigmoid(mask)`` weighs warped img0 against warped img1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from emavfi.models.contract import backward_warp, conv_in_bands, resize_flow


def conv_prelu(in_dim: int, out_dim: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv + PReLU (the published ``conv`` helper)."""
    return nn.Sequential(nn.Conv2d(in_dim, out_dim, 3, stride, 1), nn.PReLU(out_dim))


def _resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class FlowHead(nn.Module):
    """One estimation stage at feature ``scale`` (16 or 8).

    ``forward(features, images, flow)``: features (B, in_dim, H/scale, W/scale); images
    (B, image_dim, H, W), or a list of images whose channels add up to image_dim; flow
    (B, 4, H, W) or None -> flow (B, 4, H, W), mask logit (B, 1, H, W) (increments when
    ``flow`` is given).
    """

    def __init__(self, in_dim: int, scale: int, hidden_dim: int, image_dim: int) -> None:
        super().__init__()
        self.scale = scale
        self.upsample = nn.Sequential(nn.PixelShuffle(2), nn.PixelShuffle(2))
        self.conv = nn.Sequential(
            conv_prelu(in_dim // 16 + image_dim, hidden_dim),
            conv_prelu(hidden_dim, hidden_dim),
            conv_prelu(hidden_dim, 5),
        )

    def forward(
        self,
        features: torch.Tensor,
        images: torch.Tensor | list[torch.Tensor],
        flow: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.upsample(features)  # now at scale / 4
        upscale = self.scale // 4
        if isinstance(images, torch.Tensor):
            images = [images]
        if upscale != 1:
            # one image at a time: the same values, without a full-size stack of all of them
            images = [_resize(image, 1.0 / upscale) for image in images]
        if flow is not None:
            if upscale != 1:
                flow = resize_flow(flow, images[0].shape[-2:])
            images = [*images, flow.to(images[0].dtype)]  # flow: float32
        out = conv_in_bands(self.conv, [features, *images], margin=len(self.conv))
        if upscale != 1:
            out = F.interpolate(out, scale_factor=upscale, mode="bilinear", align_corners=False)
        return out[:, :4] * upscale, out[:, 4:5]


def head_input(
    appearance: torch.Tensor, motion: torch.Tensor, timestep: torch.Tensor
) -> torch.Tensor:
    """Features for one head from the stacked pair (2B, C, h, w) and timestep (B, 1, 1, 1).

    Returns (B, 2 * (C_motion + C_appearance), h, w): ``t * motion0, (1 - t) * motion1,
    appearance0, appearance1``.
    """
    batch = timestep.shape[0]
    return torch.cat(
        [
            timestep * motion[:batch],
            (1 - timestep) * motion[batch:],
            appearance[:batch],
            appearance[batch:],
        ],
        1,
    )


def estimate_flow(
    heads: nn.ModuleList,
    img0: torch.Tensor,
    img1: torch.Tensor,
    timestep: torch.Tensor,
    appearance: list[torch.Tensor],
    motion: dict[int, torch.Tensor],
    initial: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Run the heads coarse to fine.

    Args: img0, img1 (B, 3, H, W); timestep (B, 1, 1, 1); the extractor's features;
    ``initial``: an outside first estimate (flow (B, 4, H, W), mask logit (B, 1, H, W)) that
    replaces the first head (``flow_init="dis"``); the later heads refine it.
    Returns: flows and mask logits after each stage, lists of (B, 4, H, W) and (B, 1, H, W).
    """
    flows: list[torch.Tensor] = [] if initial is None else [initial[0]]
    masks: list[torch.Tensor] = [] if initial is None else [initial[1]]
    for index, head in enumerate(heads):
        if initial is not None and index == 0:
            continue
        level = len(appearance) - 1 - index  # 4 (1/16) then 3 (1/8)
        features = head_input(appearance[level], motion[level], timestep)
        if not flows:
            flow, mask = head(features, torch.cat((img0, img1), 1), None)
            flow = flow.float()  # flows add up over the stages: float32 under autocast
        else:
            warped0 = backward_warp(img0, flows[-1][:, :2])
            warped1 = backward_warp(img1, flows[-1][:, 2:4])
            images = [img0, img1, warped0, warped1, masks[-1]]
            flow_delta, mask_delta = head(features, images, flows[-1])
            flow, mask = flows[-1].float() + flow_delta.float(), masks[-1] + mask_delta
        flows.append(flow)
        masks.append(mask)
    return flows, masks
