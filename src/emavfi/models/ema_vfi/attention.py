"""Inter-frame attention (EMA-VFI Sec. 3.2): the MotionFormer block.

One attention map between the two frames yields both outputs: the attention-weighted values are
the *appearance* features, and the attention-weighted coordinates minus each token's own
coordinate are the *motion* features (an implicit, soft displacement). Attention runs in
``window_size`` x ``window_size`` windows; odd blocks shift the windows by half a window (Swin).
Feature maps whose size is not a multiple of the window are centre-padded and the padded region
is masked out. Token tensors are ``(2B, H*W, C)``: the first ``B`` rows are frame 0, the last
``B`` frame 1 (each frame attends to the other).

Attention masks depend on the padded shape *and* the padding split, so they are computed per
(H, W) and cached per block instance in a small bounded dict (never in the state dict).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

_MASK_CACHE_SIZE = 8
_MASKED = -100.0  # the published network's value for "do not attend"


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of ``window`` -> (B * nW, window * window, C)."""
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window, window, width // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, channels)


def window_reverse(windows: torch.Tensor, window: int, height: int, width: int) -> torch.Tensor:
    """(B * nW, window * window, C) -> (B, H, W, C); inverse of ``window_partition``."""
    channels = windows.shape[-1]
    x = windows.view(-1, height // window, width // window, window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, channels)


def window_padding(height: int, width: int, window: int) -> tuple[int, int]:
    """Rows and columns to add so that both sides are multiples of ``window``.

    Integer arithmetic only, so that it also holds for the symbolic sizes of an ONNX export.
    """
    return (-height) % window, (-width) % window


def _no_padding(pad_h: int, pad_w: int) -> bool:
    """True when the padding is known to be zero (a symbolic size may need some: pad then)."""
    return isinstance(pad_h, int) and isinstance(pad_w, int) and not (pad_h or pad_w)


def _region_mask(row_bounds, col_bounds, height, width, window, device) -> torch.Tensor:
    """(nW, N, N) mask: 0 where two tokens of a window lie in the same region, else -100.

    Regions are the 3 x 3 grid cut by ``row_bounds`` / ``col_bounds`` (two cuts each).
    """
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    row_region = (rows >= row_bounds[0]).long() + (rows >= row_bounds[1]).long()
    col_region = (cols >= col_bounds[0]).long() + (cols >= col_bounds[1]).long()
    region = (row_region[:, None] * 3 + col_region[None, :]).float()
    region_windows = window_partition(region[None, :, :, None], window).squeeze(-1)
    differs = region_windows[:, None, :] != region_windows[:, :, None]
    return torch.zeros(differs.shape, device=device).masked_fill(differs, _MASKED)


class DepthwiseConv(nn.Module):
    """3x3 depthwise convolution on tokens: (B, H*W, C) -> (B, H*W, C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, _, channels = x.shape
        x = x.transpose(1, 2).reshape(batch, channels, height, width)
        return self.dwconv(x).flatten(2).transpose(1, 2)


class MixFeedForward(nn.Module):
    """Linear -> depthwise 3x3 conv -> GELU -> linear, on (B, H*W, C) tokens."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = DepthwiseConv(hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x), height, width)))


class InterFrameAttention(nn.Module):
    """Attention from one frame's window tokens to the other frame's, shared by both outputs.

    ``forward(tokens, other_tokens, coords, mask)``: tokens (nWB, N, dim), coords (nWB, N, 2)
    in [-1, 1], mask (nW, N, N) or None -> appearance (nWB, N, dim), motion (nWB, N, motion_dim).
    """

    def __init__(self, dim: int, motion_dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads or motion_dim % num_heads:
            raise ValueError(f"dim {dim} and motion_dim {motion_dim} must divide by {num_heads}")
        self.num_heads = num_heads
        self.motion_dim = motion_dim
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.cor_embed = nn.Linear(2, motion_dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.motion_proj = nn.Linear(motion_dim, motion_dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(nWB, N, C) -> (nWB, heads, N, C / heads)."""
        return x.view(x.shape[0], x.shape[1], self.num_heads, -1).transpose(1, 2)

    def forward(
        self,
        tokens: torch.Tensor,
        other_tokens: torch.Tensor,
        coords: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        windows, length, dim = tokens.shape
        head_dim = dim // self.num_heads
        query = self._heads(self.q(tokens))
        key, value = self.kv(other_tokens).chunk(2, dim=-1)
        coord_embed = self.cor_embed(coords)
        # One attention map weighs both the other frame's values and its token coordinates.
        values = torch.cat([self._heads(value), self._heads(coord_embed)], dim=-1)
        key = self._heads(key)
        if mask is None:
            out = F.scaled_dot_product_attention(query, key, values, scale=self.scale)
        else:
            # Windows are ordered (image, window): view them so that the mask broadcasts.
            shape = (windows // mask.shape[0], mask.shape[0], self.num_heads, length, -1)
            out = F.scaled_dot_product_attention(
                query.reshape(shape),
                key.reshape(shape),
                values.reshape(shape),
                attn_mask=mask[None, :, None].to(query.dtype),
                scale=self.scale,
            ).flatten(0, 1)
        out = out.transpose(1, 2)  # (nWB, N, heads, head_dim + motion_dim / heads)
        appearance = out[..., :head_dim].reshape(windows, length, dim)
        attended_coords = out[..., head_dim:].reshape(windows, length, self.motion_dim)
        motion = self.motion_proj(attended_coords - coord_embed)
        return self.proj(appearance), motion


class MotionFormerBlock(nn.Module):
    """Windowed inter-frame attention + mix feed-forward, on both frames at once.

    ``forward(x, coords, height, width)``: x (2B, H*W, dim), coords (2B, H, W, 2) ->
    x (2B, H*W, dim), motion (2B, H*W, motion_dim).
    """

    def __init__(
        self,
        dim: int,
        motion_dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = InterFrameAttention(dim, motion_dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MixFeedForward(dim, int(dim * mlp_ratio))
        self._mask_cache: OrderedDict[tuple, torch.Tensor | None] = OrderedDict()

    def attention_mask(self, height: int, width: int, device: torch.device) -> torch.Tensor | None:
        """(nW, N, N) additive mask for an (unpadded) ``height`` x ``width`` map, or None."""
        if not (isinstance(height, int) and isinstance(width, int)):
            return self._build_mask(height, width, device)  # symbolic sizes (export): no cache
        key = (height, width, str(device))
        if key not in self._mask_cache:
            self._mask_cache[key] = self._build_mask(height, width, device)
            while len(self._mask_cache) > _MASK_CACHE_SIZE:
                self._mask_cache.popitem(last=False)
        return self._mask_cache[key]

    def _build_mask(self, height: int, width: int, device: torch.device) -> torch.Tensor | None:
        window, shift = self.window_size, self.shift_size
        pad_h, pad_w = window_padding(height, width, window)
        padded_h, padded_w = height + pad_h, width + pad_w
        mask = None
        if not _no_padding(pad_h, pad_w):  # keep the padding apart from the content (unshifted)
            rows = (pad_h // 2, height + pad_h // 2)
            cols = (pad_w // 2, width + pad_w // 2)
            mask = _region_mask(rows, cols, padded_h, padded_w, window, device)
        if shift:  # keep the wrapped-around strips apart (Swin); the published network
            # combines this with the padding mask taken at the unshifted window positions.
            rows = (padded_h - window, padded_h - shift)
            cols = (padded_w - window, padded_w - shift)
            shift_mask = _region_mask(rows, cols, padded_h, padded_w, window, device)
            if mask is not None:
                shift_mask = shift_mask.masked_fill(mask != 0, _MASKED)
            mask = shift_mask
        return mask

    def _pad_and_shift(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(2B, H, W, C) -> centre-padded and cyclically shifted (2B, Hp, Wp, C)."""
        pad_h, pad_w = window_padding(height, width, self.window_size)
        if not _no_padding(pad_h, pad_w):
            x = F.pad(x, (0, 0, pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        if self.shift_size:
            x = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        return x

    def _unshift_and_crop(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Inverse of ``_pad_and_shift``: (2B, Hp, Wp, C) -> (2B, H*W, C)."""
        if self.shift_size:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        pad_h, pad_w = window_padding(height, width, self.window_size)
        x = x[:, pad_h // 2 : pad_h // 2 + height, pad_w // 2 : pad_w // 2 + width, :]
        return x.reshape(x.shape[0], height * width, -1)

    def forward(
        self, x: torch.Tensor, coords: torch.Tensor, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        frames = x.shape[0]
        x_padded = self._pad_and_shift(x.view(frames, height, width, -1), height, width)
        coords_padded = self._pad_and_shift(coords, height, width)
        padded_h, padded_w = x_padded.shape[1:3]
        windows = self.norm1(window_partition(x_padded, self.window_size))
        # Frame 0's windows attend to frame 1's and vice versa.
        half = windows.shape[0] // 2
        other = torch.cat([windows[half:], windows[:half]])
        mask = self.attention_mask(height, width, x.device)
        appearance, motion = self.attn(
            windows, other, window_partition(coords_padded, self.window_size), mask
        )
        # As published, the residual adds to the *normalised* tokens.
        windows = windows + appearance
        x = self._unshift_and_crop(
            window_reverse(windows, self.window_size, padded_h, padded_w), height, width
        )
        motion = self._unshift_and_crop(
            window_reverse(motion, self.window_size, padded_h, padded_w), height, width
        )
        x = x + self.mlp(self.norm2(x), height, width)
        return x, motion
