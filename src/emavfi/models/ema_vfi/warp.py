"""Flow pyramids for EMA-VFI's refinement (Sec. 3.3): the flow at each context feature's scale.

The warp itself is the model contract's ``backward_warp`` (``emavfi.models.contract``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def downscale_flow(flow: torch.Tensor) -> torch.Tensor:
    """Halve a flow field (B, 4, H, W) -> (B, 4, H/2, W/2): bilinear resize, values halved."""
    # F.interpolate's defaults are meant: align_corners=False, the factor used as given
    # (recompute_scale_factor); spelling them out only made equivalent mutants
    half = F.interpolate(flow, scale_factor=0.5, mode="bilinear")
    return half * 0.5


def flow_pyramid(flow: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Flows for feature maps at scales 1, 1/2, ..., 1/2**(levels-1); each (B, 4, h, w)."""
    pyramid = [flow]
    for _ in range(levels - 1):
        pyramid.append(downscale_flow(pyramid[-1]))
    return pyramid
