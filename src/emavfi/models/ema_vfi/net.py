"""EMA-VFI (Zhang et al., CVPR 2023), wired the way the paper reads.

1. ``encode``: the MotionFormer extracts appearance and motion features of both frames at once
   (computed once per frame pair, whatever the number of timesteps);
2. ``decode``: the flow heads estimate bidirectional flow and a fusion mask at time t, the
   frames and their context features are backward-warped, the warped frames are blended by the
   mask, and the refinement U-Net adds a residual.

Frames are (B, 3, H, W) floats in [0, 1] in the channel order the weights were trained on (the
published ones: BGR); H and W must be multiples of 32 (the Interpolator pads). Module names
(``feature_bone``, ``block``, ``unet``) are the published checkpoints' names, so those load
after ``convert_published`` strips the ``module.`` prefix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from emavfi.errors import EmavfiError
from emavfi.flow import dis
from emavfi.models.contract import (
    InterpolationOutput,
    backward_warp,
    resize_flow,
    timestep_tensor,
)
from emavfi.models.ema_vfi.feature_extractor import MotionFormer
from emavfi.models.ema_vfi.flow_estimation import FlowHead, estimate_flow
from emavfi.models.ema_vfi.fusion import DeformableFusion
from emavfi.models.ema_vfi.refine import RefineUNet, tiles
from emavfi.models.ema_vfi.warp import flow_pyramid

FLOW_MULTIPLE = 16  # the motion estimation's own size multiple (1/16-scale features)
REFINE_MULTIPLE = 32  # the refinement U-Net's (five stride-2 stages)
# Frames up to 1080p are refined whole; larger ones in tiles with cores of at most about
# REFINE_CORE_PIXELS in float32 (3840x2160: 12 tiles) and twice that under 16-bit autocast (6
# tiles: the same memory), which keeps a 4K frame within 4 GB of RAM (README, "4K on a CPU").
# Smaller tiles cost time: their margins are refined too.
REFINE_TILE_PIXELS = 1920 * 1088
REFINE_CORE_PIXELS = 1024 * 1024


@dataclass
class PairFeatures:
    """Features of one frame pair, reusable for any number of timesteps.

    appearance: five (2B, C_i, H/2**i, W/2**i) maps of ``[img0; img1]`` (warped as context);
    flow_appearance / flow_motion: the features the flow heads read (the same objects unless
    ``flow_scale < 1``, then those of ``flow_img0`` / ``flow_img1``, the downscaled frames).
    """

    appearance: list[torch.Tensor]
    flow_appearance: list[torch.Tensor]
    flow_motion: dict[int, torch.Tensor]
    flow_img0: torch.Tensor
    flow_img1: torch.Tensor
    dis_pairs: list[dis.PairFlows] | None = None  # flow_init="dis": timestep-free, per item


def arch_dims(width: int, depths: list[int]) -> dict:
    """The published ``init_model_config(F, W, depth)`` dimensions for ``F = width``."""
    if width < 4 or width % 4:
        raise EmavfiError(f"EMA-VFI width must be a multiple of 4 (>= 4), not {width}")
    if len(depths) != 5 or min(depths) < 1:
        raise EmavfiError(f"EMA-VFI depths must be five positive numbers, not {depths}")
    embed_dims = [width * 2**i for i in range(5)]
    motion_dims = [0, 0, 0, 8 * width // depths[3], 16 * width // depths[4]]
    num_heads = [8 * width // 32, 16 * width // 32]
    if num_heads[0] < 1 or motion_dims[3] % num_heads[0] or motion_dims[4] % num_heads[1]:
        raise EmavfiError(f"EMA-VFI width {width} and depths {depths} give unusable heads")
    return {"embed_dims": embed_dims, "motion_dims": motion_dims, "num_heads": num_heads}


class EMAVFI(nn.Module):
    """The EMA-VFI network.

    Args:
        width: F, channels of the first stage (published: 32 base, 16 small).
        window_size: W, attention window at 1/8 and 1/16 scale (published: 7).
        depths: blocks per stage (published: [2, 2, 2, 4, 4] base, [2, 2, 2, 2, 2] small).
        deform_fusion: add the deformable fusion of the warped context (see fusion.py).
        flow_init: ``"none"`` (the published network) or ``"dis"``: the first estimate is the
            DIS flow at t and its consistency mask (``emavfi.flow.dis``, the classical engine's),
            which the 1/8-scale head refines (the 1/16-scale head is not built). A warm start
            from classical flow: our CPU-trained default uses it (see the README's model card).
    """

    def __init__(
        self,
        width: int = 32,
        window_size: int = 7,
        depths: list[int] | tuple[int, ...] = (2, 2, 2, 4, 4),
        deform_fusion: bool = False,
        flow_init: str = "none",
    ) -> None:
        super().__init__()
        if flow_init not in ("none", "dis"):
            raise ValueError(f"flow_init must be 'none' or 'dis', not {flow_init!r}")
        self.flow_init = flow_init
        depths = list(depths)
        dims = arch_dims(width, depths)
        embed, motion = dims["embed_dims"], dims["motion_dims"]
        self.feature_bone = MotionFormer(embed, motion, depths, dims["num_heads"], window_size)
        head_dims = [2 * (motion[level] * depths[level] + embed[level]) for level in (4, 3)]
        self.block = nn.ModuleList(
            [
                FlowHead(head_dims[0], scale=16, hidden_dim=4 * width, image_dim=6)
                if flow_init == "none"
                else nn.Identity(),
                FlowHead(head_dims[1], scale=8, hidden_dim=4 * width, image_dim=17),
            ]
        )
        self.unet = RefineUNet(2 * width)
        self.fusion = DeformableFusion(embed) if deform_fusion else None
        # Frames of more pixels are synthesised in tiles (None: never; see REFINE_CORE_PIXELS).
        self.refine_tile_pixels: int | None = REFINE_TILE_PIXELS
        self.feature_bone.apply(_init_weights)
        self.unet.apply(_init_weights)

    def encode(
        self,
        img0: torch.Tensor,
        img1: torch.Tensor,
        flow_scale: float = 1.0,
        refine_at_scale: bool = False,
    ) -> PairFeatures:
        """Features of the pair (B, 3, H, W) each; ``flow_scale`` < 1 also encodes them smaller.

        ``refine_at_scale`` (only with ``flow_scale`` < 1) skips the full-size encoding: ``decode``
        then refines at the reduced size too and only warps and blends at full size.
        """
        if flow_scale >= 1.0:
            appearance, motion = self.feature_bone(img0, img1)
            return PairFeatures(appearance, appearance, motion, img0, img1)
        height, width = img0.shape[2:]
        multiple = REFINE_MULTIPLE if refine_at_scale else FLOW_MULTIPLE
        size = tuple(
            max(multiple, round(side * flow_scale / multiple) * multiple)
            for side in (height, width)
        )
        small = F.interpolate(
            torch.cat([img0, img1], 1), size=size, mode="bilinear", align_corners=False
        )
        small0, small1 = small[:, :3], small[:, 3:]
        small_appearance, small_motion = self.feature_bone(small0, small1)
        appearance = small_appearance if refine_at_scale else self.feature_bone(img0, img1)[0]
        return PairFeatures(appearance, small_appearance, small_motion, small0, small1)

    def dis_initial(
        self, features: PairFeatures, timestep: float | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``flow_init="dis"``: the classical flow at t and its mask logit, at the flow size.

        Returns flow (B, 4, h, w) and mask logit (B, 1, h, w) for ``features.flow_img0``'s
        size. DIS (OpenCV, on the CPU) runs once per pair, on the first call; later timesteps
        of the same pair reuse its result. Outside ``encode`` and the network's layers so that
        an exported graph can take it as an input (see ``emavfi.runtime.export``).
        """
        if features.dis_pairs is None:
            features.dis_pairs = dis.batch_pair_flows(features.flow_img0, features.flow_img1)
        times = timestep_tensor(timestep, features.flow_img0).flatten().tolist()
        return dis.initial_flow(features.dis_pairs, times, features.flow_img0)

    def decode(
        self,
        img0: torch.Tensor,
        img1: torch.Tensor,
        timestep: float | torch.Tensor,
        features: PairFeatures,
        return_aux: bool = False,
        initial: tuple[torch.Tensor, torch.Tensor] | None = None,
        last: bool = False,
    ) -> torch.Tensor | InterpolationOutput:
        """The frame at ``timestep`` (float, (B,) or (B, 1, 1, 1)) from ``encode``'s features.

        ``initial`` (``flow_init="dis"`` only): ``dis_initial``'s result, computed here if None.
        ``last``: the features' last use; what only later timesteps would reuse (the DIS
        flows, 200 MB at 4K) is freed as soon as it has served.
        """
        t = timestep_tensor(timestep, img0)
        if self.flow_init == "dis" and initial is None:
            initial = self.dis_initial(features, t)
        if last:
            features.dis_pairs = None
        flows, masks = estimate_flow(
            self.block,
            features.flow_img0,
            features.flow_img1,
            t,
            features.flow_appearance,
            features.flow_motion,
            initial,
        )
        initial = None
        if not return_aux:  # the earlier stages are only reported: free them (4K: 170 MB each)
            del flows[:-1], masks[:-1]
        full_size = img0.shape[2:]
        residual = None
        if features.appearance[0].shape[2:] != full_size:
            # refine_at_scale: the U-Net runs on the small frames; its residual is upsampled.
            small0, small1 = features.flow_img0, features.flow_img1
            flow, mask = flows[-1], masks[-1]
            warped0 = backward_warp(small0, flow[:, :2])
            warped1 = backward_warp(small1, flow[:, 2:4])
            small_residual = self._refine(
                small0, small1, warped0, warped1, flow, mask, features.appearance
            )
            residual = _upscale(small_residual, full_size)
        if features.flow_img0.shape[2:] != full_size:
            flows = [resize_flow(flow, full_size) for flow in flows]
            masks = [_upscale(mask, full_size) for mask in masks]
        flow, mask = flows[-1], masks[-1]
        if residual is None and not return_aux and self._tiled(full_size):
            return self._synthesise_in_tiles(img0, img1, flow, mask, features.appearance)
        warped0 = backward_warp(img0, flow[:, :2])
        warped1 = backward_warp(img1, flow[:, 2:4])
        if residual is None:
            residual = self._refine(img0, img1, warped0, warped1, flow, mask, features.appearance)
        merged = _merge(warped0, warped1, mask)
        pred = torch.clamp(merged + residual, 0, 1)
        if not return_aux:
            return pred
        merged_stages = [
            _blend(img0, img1, stage_flow, stage_mask)
            for stage_flow, stage_mask in zip(flows[:-1], masks[:-1])
        ] + [merged]
        return InterpolationOutput(
            pred=pred,
            merged=merged,
            flow=flow,
            mask=torch.sigmoid(mask),
            flow_stages=flows,
            merged_stages=merged_stages,
        )

    def _tiled(self, size: torch.Size) -> bool:
        """Whether a frame of this size is synthesised in tiles (``refine_tile_pixels``)."""
        limit = self.refine_tile_pixels
        return self.fusion is None and bool(limit) and size[0] * size[1] > limit

    def _synthesise_in_tiles(self, img0, img1, flow, mask, appearance) -> torch.Tensor:
        """The frame (B, 3, H, W) from the final flow and mask logit, warped, refined and
        blended tile by tile (``refine.tiles``, cores of at most ``refine_tile_pixels`` and
        ``REFINE_CORE_PIXELS`` pixels, twice as many under fp16/bf16 autocast).

        Each tile's warps and warped context are cut from the whole frame's, so a core is the
        whole frame's result there, to float rounding, without the full-size warped frames and
        residual (4K: a quarter of the peak memory).
        """
        height, width = img0.shape[2:]
        pred = torch.empty_like(img0)
        device = img0.device.type
        half = torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device).itemsize == 2
        core_pixels = min(self.refine_tile_pixels, REFINE_CORE_PIXELS * (2 if half else 1))
        for rows, cols, core_rows, core_cols in tiles(height, width, core_pixels):
            window = (slice(None), slice(None), rows, cols)
            origin = (rows.start, cols.start)
            tile_flow, tile_mask = flow[window], mask[window]
            warped0 = backward_warp(img0, tile_flow[:, :2], origin)
            warped1 = backward_warp(img1, tile_flow[:, 2:4], origin)
            residual = self._refine(
                img0[window],
                img1[window],
                warped0,
                warped1,
                tile_flow,
                tile_mask,
                appearance,
                origin,
            )
            tile = torch.clamp(_merge(warped0, warped1, tile_mask) + residual, 0, 1)
            pred[window][..., core_rows, core_cols] = tile[..., core_rows, core_cols]
        return pred

    def _refine(
        self, img0, img1, warped0, warped1, flow, mask, appearance, origin=(0, 0)
    ) -> torch.Tensor:
        """The U-Net's residual (B, 3, h, w) in [-1, 1] for the window at ``origin`` (row,
        column) of the frame (all of it by default); ``appearance`` is the whole frame's."""
        batch = img0.shape[0]
        flows = flow_pyramid(flow, len(appearance))
        whole = origin == (0, 0) and appearance[0].shape[2:] == img0.shape[2:]
        origins = [None if whole else (origin[0] >> i, origin[1] >> i) for i in range(len(flows))]
        context0 = [
            backward_warp(a[:batch], f[:, :2], o) for a, f, o in zip(appearance, flows, origins)
        ]
        context1 = [
            backward_warp(a[batch:], f[:, 2:4], o) for a, f, o in zip(appearance, flows, origins)
        ]
        if self.fusion is not None:
            context0, context1 = self.fusion(context0, context1, flows, mask)
        inputs = torch.cat((img0, img1, warped0, warped1, mask, flow.to(img0.dtype)), 1)
        return self.unet(inputs, context0, context1) * 2 - 1

    def forward(
        self,
        img0: torch.Tensor,
        img1: torch.Tensor,
        timestep: float | torch.Tensor = 0.5,
        return_aux: bool = False,
        flow_scale: float = 1.0,
        refine_at_scale: bool = False,
    ) -> torch.Tensor | InterpolationOutput:
        """Interpolate (B, 3, H, W) frames at ``timestep``; see the model contract.

        ``flow_scale`` < 1 estimates motion on frames resized by that factor (to a multiple of
        16) and upsamples flow and mask; warping and refinement stay at full resolution (the
        published ``hr_inference``). ``refine_at_scale`` also refines at the reduced size and
        upsamples the residual: only warping and blending stay at full size (faster, softer).
        """
        features = self.encode(img0, img1, flow_scale, refine_at_scale)
        return self.decode(img0, img1, timestep, features, return_aux)


def _merge(warped0, warped1, mask_logit) -> torch.Tensor:
    """The warped frames blended by ``sigmoid(mask_logit)``, img0's weight."""
    weight0 = torch.sigmoid(mask_logit)
    return warped0 * weight0 + warped1 * (1 - weight0)


def _blend(img0, img1, flow, mask_logit) -> torch.Tensor:
    return _merge(backward_warp(img0, flow[:, :2]), backward_warp(img1, flow[:, 2:4]), mask_logit)


def _upscale(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def _init_weights(module: nn.Module) -> None:
    """The published initialisation: truncated normal linears, fan-out normal convs."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
        nn.init.normal_(module.weight, 0, math.sqrt(2.0 / (fan_out // module.groups)))
        if module.bias is not None:
            nn.init.zeros_(module.bias)
