"""The hybrid CNN + Transformer feature extractor, MotionFormer (EMA-VFI Sec. 3.2).

Both frames go through it together as one batch ``[img0; img1]`` of ``2B`` images. Stages 1-3
are convolutions (scales 1, 1/2, 1/4; channels F, 2F, 4F); stages 4-5 (scales 1/8 and 1/16;
channels 8F, 16F) are MotionFormer blocks whose inter-frame attention gives *appearance*
features and *motion* features together. Stage 4 is embedded from all three CNN scales
(cross-scale patch embedding with dilated convolutions). The attribute names follow the
published checkpoints (``block1``, ``patch_embed4``, ``norm5``, ...), so they load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from emavfi.models.contract import conv_in_bands
from emavfi.models.ema_vfi.attention import MotionFormerBlock

NUM_CNN_STAGES = 3
NUM_STAGES = 5


class ConvBlock(nn.Module):
    """``depth`` x (3x3 conv + PReLU): (B, in_dim, H, W) -> (B, out_dim, H, W)."""

    def __init__(self, in_dim: int, out_dim: int, depth: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(depth):
            layers += [nn.Conv2d(in_dim if index == 0 else out_dim, out_dim, 3, 1, 1)]
            layers += [nn.PReLU(out_dim)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_in_bands(self.conv, [x], margin=len(self.conv) // 2)  # one row per conv


class OverlapPatchEmbed(nn.Module):
    """Stride-2 3x3 conv then LayerNorm: (B, C_in, H, W) -> tokens (B, H/2 * W/2, C_out)."""

    def __init__(self, in_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_dim, embed_dim, kernel_size=3, stride=2, padding=1)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        height, width = x.shape[2:]
        return self.norm(x.flatten(2).transpose(1, 2)), height, width


class CrossScalePatchEmbed(nn.Module):
    """Embed the three CNN scales into 1/8-scale tokens (B, H/8 * W/8, embed_dim).

    The scale-1/2**i map feeds 2**i dilated 3x3 convolutions (dilation 1..2**i) whose strides
    all land on the 1/8 grid; their F-channel outputs are concatenated and projected.
    """

    def __init__(self, in_dims: list[int], embed_dim: int) -> None:
        super().__init__()
        base_dim = in_dims[0]
        layers = []
        for level in range(len(in_dims)):  # level 0 is the coarsest input (1/4 scale)
            for dilation in range(1, 2**level + 1):
                layers.append(
                    nn.Conv2d(
                        in_dims[-1 - level], base_dim, 3, 2 ** (level + 1), dilation, dilation
                    )
                )
        self.layers = nn.ModuleList(layers)
        self.proj = nn.Conv2d(base_dim * len(layers), embed_dim, 1, 1)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, int, int]:
        outputs = []
        layer_iter = iter(self.layers)
        for level in range(len(features)):
            source = features[-1 - level]
            outputs += [next(layer_iter)(source) for _ in range(2**level)]
        x = self.proj(torch.cat(outputs, 1))
        height, width = x.shape[2:]
        return self.norm(x.flatten(2).transpose(1, 2)), height, width


def token_coordinates(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(batch, H, W, 2) normalised token coordinates in [-1, 1]: channel 0 is x, 1 is y."""
    xs = torch.linspace(-1.0, 1.0, width, device=like.device, dtype=like.dtype)
    ys = torch.linspace(-1.0, 1.0, height, device=like.device, dtype=like.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    return grid.expand(batch, height, width, 2)


class MotionFormer(nn.Module):
    """Appearance and motion features of a frame pair.

    Args:
        embed_dims: channels of the five stages, ``[F, 2F, 4F, 8F, 16F]``.
        motion_dims: motion channels per block in stages 4 and 5.
        depths: blocks per stage (five numbers).
        num_heads: attention heads in stages 4 and 5.
        window_size: attention window (W).

    ``forward(img0, img1)``: (B, 3, H, W) each, H and W multiples of 16 ->
    ``appearance`` list of five (2B, C_i, H/2**i, W/2**i) and ``motion`` dict {3: (2B, M_3,
    H/8, W/8), 4: (2B, M_4, H/16, W/16)} with ``M_i = motion_dims[i] * depths[i]``.
    """

    def __init__(
        self,
        embed_dims: list[int],
        motion_dims: list[int],
        depths: list[int],
        num_heads: list[int],
        window_size: int,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.block1 = ConvBlock(3, embed_dims[0], depths[0])
        for stage in range(1, NUM_CNN_STAGES):
            setattr(
                self,
                f"patch_embed{stage + 1}",
                nn.Sequential(
                    nn.Conv2d(embed_dims[stage - 1], embed_dims[stage], 3, 2, 1),
                    nn.PReLU(embed_dims[stage]),
                ),
            )
            setattr(
                self,
                f"block{stage + 1}",
                ConvBlock(embed_dims[stage], embed_dims[stage], depths[stage]),
            )
        self.patch_embed4 = CrossScalePatchEmbed(embed_dims[:NUM_CNN_STAGES], embed_dims[3])
        self.patch_embed5 = OverlapPatchEmbed(embed_dims[3], embed_dims[4])
        for stage in range(NUM_CNN_STAGES, NUM_STAGES):
            blocks = nn.ModuleList(
                MotionFormerBlock(
                    embed_dims[stage],
                    motion_dims[stage],
                    num_heads[stage - NUM_CNN_STAGES],
                    window_size,
                    shift_size=0 if index % 2 == 0 else window_size // 2,
                    mlp_ratio=mlp_ratio,
                )
                for index in range(depths[stage])
            )
            setattr(self, f"block{stage + 1}", blocks)
            setattr(self, f"norm{stage + 1}", nn.LayerNorm(embed_dims[stage], eps=1e-6))

    def forward(
        self, img0: torch.Tensor, img1: torch.Tensor
    ) -> tuple[list[torch.Tensor], dict[int, torch.Tensor]]:
        x = torch.cat([img0, img1], 0)
        appearance = [self.block1(x)]
        for stage in range(1, NUM_CNN_STAGES):
            x = getattr(self, f"patch_embed{stage + 1}")(appearance[-1])
            appearance.append(getattr(self, f"block{stage + 1}")(x))
        motion = {}
        for stage in range(NUM_CNN_STAGES, NUM_STAGES):
            if stage == NUM_CNN_STAGES:
                tokens, height, width = self.patch_embed4(appearance)
            else:
                tokens, height, width = self.patch_embed5(appearance[-1])
            coords = token_coordinates(tokens.shape[0], height, width, tokens)
            motions = []
            for block in getattr(self, f"block{stage + 1}"):
                tokens, block_motion = block(tokens, coords, height, width)
                motions.append(_tokens_to_map(block_motion, height, width))
            tokens = getattr(self, f"norm{stage + 1}")(tokens)
            appearance.append(_tokens_to_map(tokens, height, width))
            motion[stage] = torch.cat(motions, 1)
        return appearance, motion


def _tokens_to_map(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W)."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, height, width)
