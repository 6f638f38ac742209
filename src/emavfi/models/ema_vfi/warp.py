"""Backward warping (EMA-VFI Sec. 3.3): sample a frame or a feature map along a flow.

A flow is ``(B, 2, H, W)`` in pixels, channel 0 is x (width), channel 1 is y: the output pixel
``(x, y)`` takes its value from ``source(x + flow_x, y + flow_y)``, bilinearly, with border
replication outside the frame (as the published network). The sampling grid is always built
in float32, even under fp16 autocast: pixel coordinates above 2048 lose precision in fp16.
No grid is cached: ``linspace`` is cheap and a cache keyed by shape would grow without bound.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def backward_warp(source: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Warp ``source`` (B, C, H, W) with ``flow`` (B, 2, H, W) in pixels; returns (B, C, H, W).

    The result has the dtype of ``source``; the sampling itself runs in float32.
    """
    height, width = flow.shape[2:]
    flow = flow.float()
    with torch.autocast(device_type=flow.device.type, enabled=False):
        base_x = torch.linspace(-1.0, 1.0, width, device=flow.device).view(1, 1, width)
        base_y = torch.linspace(-1.0, 1.0, height, device=flow.device).view(1, height, 1)
        # align_corners=True: -1 and 1 are the centres of the first and last pixels.
        grid_x = base_x + flow[:, 0] / ((source.shape[3] - 1.0) / 2.0)
        grid_y = base_y + flow[:, 1] / ((source.shape[2] - 1.0) / 2.0)
        grid = torch.stack((grid_x, grid_y), dim=3)
        warped = F.grid_sample(
            source.float(), grid, mode="bilinear", padding_mode="border", align_corners=True
        )
    return warped.to(source.dtype)


def downscale_flow(flow: torch.Tensor) -> torch.Tensor:
    """Halve a flow field (B, 4, H, W) -> (B, 4, H/2, W/2): bilinear resize, values halved."""
    half = F.interpolate(
        flow, scale_factor=0.5, mode="bilinear", align_corners=False, recompute_scale_factor=False
    )
    return half * 0.5


def flow_pyramid(flow: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Flows for feature maps at scales 1, 1/2, ..., 1/2**(levels-1); each (B, 4, h, w)."""
    pyramid = [flow]
    for _ in range(levels - 1):
        pyramid.append(downscale_flow(pyramid[-1]))
    return pyramid
