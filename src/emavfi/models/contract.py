"""The model contract: what every network family and weight-free engine shares.

``forward(img0, img1, timestep, return_aux=False, ...)`` takes two (B, 3, H, W) frames in [0, 1]
and a timestep (float, (B,) or (B, 1, 1, 1), in (0, 1)) and returns the (B, 3, H, W) frame, or
with ``return_aux=True`` an ``InterpolationOutput``. A model that can estimate motion on smaller
frames takes ``flow_scale`` (the Interpolator passes ``--scale`` as it).

Flows are (B, 4, H, W) in pixels, channels 0-1 from time t to img0, 2-3 from t to img1; they are
applied with ``backward_warp``. This module imports nothing from the package: model families
(``ema_vfi``, ``rife``), engines and losses import it, never each other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class InterpolationOutput:
    """A model's frame and what the training losses supervise, for a batch of B frames H x W.

    pred (B, 3, H, W) in [0, 1]; merged (B, 3, H, W) the blended warped frames before any
    refinement (an engine without refinement: ``pred``); flow (B, 4, H, W) in pixels and mask
    (B, 1, H, W) = the blending weight of warped img0 in [0, 1], None for a model without
    motion (``blend``); flow_stages / merged_stages one (B, 4|3, H, W) per estimation stage,
    coarse to fine, the last being ``flow`` / ``merged`` (left empty: just those).
    """

    pred: torch.Tensor
    merged: torch.Tensor
    flow: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    flow_stages: list[torch.Tensor] = field(default_factory=list)
    merged_stages: list[torch.Tensor] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.merged_stages:
            self.merged_stages = [self.merged]
        if not self.flow_stages and self.flow is not None:
            self.flow_stages = [self.flow]

    def to_channel_order(self, channel_order: str) -> InterpolationOutput:
        """The output with its frames (pred, merged, merged_stages) converted as by the function
        ``to_channel_order``; flows and mask do not depend on the channel order."""
        if channel_order == "RGB":
            return self
        return dataclasses.replace(
            self,
            pred=to_channel_order(self.pred, channel_order),
            merged=to_channel_order(self.merged, channel_order),
            merged_stages=[to_channel_order(x, channel_order) for x in self.merged_stages],
        )


def to_channel_order(frames: torch.Tensor, channel_order: str) -> torch.Tensor:
    """RGB frames (B, 3, H, W) in a network's ``channel_order`` (``ModelSpec.channel_order``:
    "RGB" or "BGR"), and the network's frames back to RGB: reversing the channels is its own
    inverse. The one place frames change order, wherever a network is fed (Interpolator,
    training, teacher)."""
    if channel_order not in ("RGB", "BGR"):
        raise ValueError(f"channel_order must be 'RGB' or 'BGR', not {channel_order!r}")
    return frames.flip(1) if channel_order == "BGR" else frames


def timestep_tensor(timestep: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A float, 0-d, (B,) or (B, 1, 1, 1) timestep as (B, 1, 1, 1) on ``like``'s device and dtype.

    B is ``like.shape[0]``; a tensor with another number of values raises ValueError.
    """
    batch = like.shape[0]
    t = torch.as_tensor(timestep, dtype=like.dtype, device=like.device)
    if t.numel() == 1:
        return t.reshape(1, 1, 1, 1).expand(batch, 1, 1, 1)
    if t.numel() != batch:
        raise ValueError(f"timestep has {t.numel()} values for a batch of {batch}")
    return t.reshape(batch, 1, 1, 1)


def timestep_plane(timestep: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The timestep as a (B, 1, H, W) input plane for ``like`` (B, C, H, W)."""
    batch, _, height, width = like.shape
    return timestep_tensor(timestep, like).expand(batch, 1, height, width)


def backward_warp(
    source: torch.Tensor, flow: torch.Tensor, origin: tuple[int, int] | None = None
) -> torch.Tensor:
    """Warp ``source`` (B, C, H, W) with ``flow`` (B, 2, H, W) in pixels; returns (B, C, H, W).

    Channel 0 of the flow is x (width), channel 1 is y: the output pixel ``(x, y)`` takes its
    value from ``source(x + flow_x, y + flow_y)``, bilinearly, with border replication outside
    the frame (as the published EMA-VFI and RIFE networks). The result has the dtype of
    ``source``; the sampling grid is built in float32 even under fp16 autocast (pixel
    coordinates above 2048 lose precision in fp16). No grid is cached: ``linspace`` is cheap
    and a cache keyed by shape would grow without bound.

    ``origin`` (row, column): the flow (B, 2, h, w) covers only the window of ``source`` whose
    top-left pixel is there, and the output is that window (h, w), warped from the whole source:
    a tile of a large frame, equal to the same window of the whole frame's warp.
    """
    height, width = flow.shape[2:]
    flow = flow.float()
    with torch.autocast(device_type=flow.device.type, enabled=False):
        if origin is None:
            base_x = torch.linspace(-1.0, 1.0, width, device=flow.device).view(1, 1, width)
            base_y = torch.linspace(-1.0, 1.0, height, device=flow.device).view(1, height, 1)
        else:  # the whole frame's grid, cut to the window: the very same coordinates
            top, left = origin
            full_x = torch.linspace(-1.0, 1.0, source.shape[3], device=flow.device)
            full_y = torch.linspace(-1.0, 1.0, source.shape[2], device=flow.device)
            base_x = full_x[left : left + width].view(1, 1, width)
            base_y = full_y[top : top + height].view(1, height, 1)
        # align_corners=True: -1 and 1 are the centres of the first and last pixels.
        grid_x = base_x + flow[:, 0] / ((source.shape[3] - 1.0) / 2.0)
        grid_y = base_y + flow[:, 1] / ((source.shape[2] - 1.0) / 2.0)
        grid = torch.stack((grid_x, grid_y), dim=3)
        warped = F.grid_sample(
            source.float(), grid, mode="bilinear", padding_mode="border", align_corners=True
        )
    return warped.to(source.dtype)


def resize_flow(flow: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize a (B, 4, h, w) flow to ``size`` (H, W), scaling x and y values by the size ratios."""
    if tuple(flow.shape[-2:]) == tuple(size):
        return flow
    ratio_y, ratio_x = size[0] / flow.shape[2], size[1] / flow.shape[3]
    scale = flow.new_tensor([ratio_x, ratio_y, ratio_x, ratio_y]).view(1, 4, 1, 1)
    resized = F.interpolate(flow, size=tuple(size), mode="bilinear", align_corners=False)
    return resized * scale


# ``conv_in_bands``: maps of more than BAND_ABOVE_PIXELS (a frame above 720p at full size) go
# through in bands of rows of about BAND_PIXELS.
BAND_ABOVE_PIXELS = 1024 * 1024
BAND_PIXELS = 512 * 1024


def conv_in_bands(layers: nn.Module, parts: list[torch.Tensor], margin: int) -> torch.Tensor:
    """``layers`` (convolutions, at most ``margin`` rows of reach each side) applied to the
    channel concatenation of ``parts`` (each (B, C_i, H, W)), in bands of rows on large maps.

    Each band is cut with ``margin`` extra rows each side and only its own rows are kept: the
    same values as on the whole map, without the whole map's input stack and activations (a
    4K frame's full-size stages). Maps of up to ``BAND_ABOVE_PIXELS``, and traced graphs
    (ONNX export: dynamic sizes), go through whole.
    """
    height, width = parts[0].shape[2:]
    rows = max(1, BAND_PIXELS // width)
    if height * width <= BAND_ABOVE_PIXELS or rows >= height or torch.jit.is_tracing():
        return layers(torch.cat(parts, 1) if len(parts) > 1 else parts[0])
    out = None
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        start, stop = max(0, top - margin), min(height, bottom + margin)
        band = layers(torch.cat([part[:, :, start:stop] for part in parts], 1))
        if out is None:
            channels_last = band.is_contiguous(memory_format=torch.channels_last)
            out = torch.empty(
                (*band.shape[:2], height, width),
                dtype=band.dtype,
                device=band.device,
                memory_format=torch.channels_last if channels_last else torch.contiguous_format,
            )
        out[:, :, top:bottom] = band[:, :, top - start : bottom - start]
    return out
