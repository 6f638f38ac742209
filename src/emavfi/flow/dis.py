"""DIS optical flow (Kroeger et al., ECCV 2016, through OpenCV) and the interpolation built on it.

The one home of: DIS presets, the grey conversion DIS reads, the backward warp of NumPy images
(``cv2.remap``), the forward-backward consistency check, and the flows at time t of the
linear-motion approximation. Its users: the ``classical`` engine (``engines/classical.py``),
EMA-VFI's ``flow_init="dis"`` warm start (``models/ema_vfi/net.py``) and the DIS training teacher
(``train/teacher.py``).

Conventions: a NumPy frame is HxWx3 float32 RGB in [0, 1]; a flow is HxWx2 float32 in pixels
(x, y) with ``src(x) ~ dst(x + f(x))``; the torch side takes (B, 3, H, W) frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np
import torch

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
SIGMA = 1.5  # px: round-trip error tolerance of the engine and the warm start (ema-cpu's weights)


def to_gray(image: np.ndarray) -> np.ndarray:
    """HxWx3 float RGB in [0, 1] -> HxW uint8 grey (rounded), what DIS reads."""
    return cv2.cvtColor((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2GRAY)


def dis_flow(src_gray: np.ndarray, dst_gray: np.ndarray, preset: str = "medium") -> np.ndarray:
    """DIS flow from ``src`` to ``dst``: HxW uint8 each -> HxWx2 float32, ``src(x) ~ dst(x + f)``.

    A new DIS object per call (about 20 us): cv2 objects neither pickle into data-loader workers
    nor may be shared between threads.
    """
    return cv2.DISOpticalFlow_create(PRESETS[preset]).calc(src_gray, dst_gray, None)


def _positions(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sampling positions ``x + flow(x)``: two HxW float32 maps (x, y)."""
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    return grid_x + flow[..., 0], grid_y + flow[..., 1]


def remap(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: ``out(x) = image(x + flow(x))`` (bilinear, border replicate)."""
    map_x, map_y = _positions(flow)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistency(
    forward: np.ndarray,
    backward: np.ndarray,
    sigma: float = SIGMA,
    relative: float = 0.0,
    zero_outside: bool = False,
) -> np.ndarray:
    """Per-pixel reliability in [0, 1] (HxW float32) of ``forward`` from its round trip.

    With ``f = forward`` (a -> b) and ``b = backward`` (b -> a), a pixel is reliable when
    ``e(x) = |f(x) + b(x + f(x))|`` is small:

        w(x) = exp(-e(x)^2 / (2 s(x)^2)),  s(x) = sigma + relative * |f(x)|

    The engine and the warm start use a fixed ``sigma`` of 1.5 px; the teacher, ``sigma`` 1 px
    with ``relative`` 0.05 (large motions may err more) and ``zero_outside``: pixels whose flow
    leaves the frame cannot be checked and get 0.
    """
    error = np.linalg.norm(forward + remap(backward, forward), axis=2)
    tolerance = sigma + relative * np.linalg.norm(forward, axis=2) if relative else sigma
    reliability = np.exp(-(error**2) / (2 * tolerance**2)).astype(np.float32)
    if zero_outside:
        map_x, map_y = _positions(forward)
        height, width = forward.shape[:2]
        reliability[(map_x < 0) | (map_x > width - 1) | (map_y < 0) | (map_y > height - 1)] = 0.0
    return reliability


class PairFlows(NamedTuple):
    """The timestep-free DIS results of one frame pair (reusable for any t): flows both ways
    (HxWx2) and the consistency of each (HxW)."""

    f01: np.ndarray
    f10: np.ndarray
    reliable01: np.ndarray
    reliable10: np.ndarray


def pair_flows(
    img0: np.ndarray, img1: np.ndarray, preset: str = "medium", sigma: float = SIGMA
) -> PairFlows:
    """DIS both ways between two HxWx3 frames and the consistency of each direction."""
    gray0, gray1 = to_gray(img0), to_gray(img1)
    f01, f10 = dis_flow(gray0, gray1, preset), dis_flow(gray1, gray0, preset)
    return PairFlows(f01, f10, consistency(f01, f10, sigma), consistency(f10, f01, sigma))


def flows_at(pair: PairFlows, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward flows from time t (HxWx2 each) and img0's blending weight (HxW, in (0, 1)).

    Linear motion as in Super SloMo (Jiang et al., CVPR 2018):
    ``flow_t0 = -(1 - t) t f01 + t^2 f10`` and ``flow_t1 = (1 - t)^2 f01 - t (1 - t) f10``;
    the weights ``(1 - t) c0`` and ``t c1`` trust a frame less where its flow does not come back
    (likely occluded in the other frame), ``c`` sampled at the warped positions.
    """
    f01, f10, reliable01, reliable10 = pair
    flow_t0 = -(1 - t) * t * f01 + t * t * f10
    flow_t1 = (1 - t) ** 2 * f01 - t * (1 - t) * f10
    weight0 = (1 - t) * (remap(reliable01, flow_t0) + 1e-3)
    weight1 = t * (remap(reliable10, flow_t1) + 1e-3)
    return flow_t0, flow_t1, weight0 / (weight0 + weight1)


def to_numpy_frames(images: torch.Tensor) -> list[np.ndarray]:
    """(B, 3, H, W) tensor -> B contiguous HxWx3 float32 arrays."""
    array = images.detach().float().permute(0, 2, 3, 1).cpu().numpy()
    return [np.ascontiguousarray(item) for item in array]


def batch_pair_flows(
    img0: torch.Tensor, img1: torch.Tensor, preset: str = "medium", sigma: float = SIGMA
) -> list[PairFlows]:
    """``pair_flows`` of each item of two (B, 3, H, W) RGB batches in [0, 1]."""
    frames = zip(to_numpy_frames(img0), to_numpy_frames(img1))
    return [pair_flows(a, b, preset, sigma) for a, b in frames]


def initial_flow(
    pairs: Sequence[PairFlows], times: Sequence[float], like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The flow at t and its blending mask as a logit, for a network to refine (no gradient).

    ``pairs`` from ``batch_pair_flows``, one timestep per item. Returns flow (B, 4, H, W)
    (channels 0-1 t -> img0, 2-3 t -> img1) and mask logit (B, 1, H, W), on ``like``'s device
    and dtype.
    """
    results = [flows_at(pair, t) for pair, t in zip(pairs, times)]
    flow = np.stack([np.concatenate(r[:2], axis=2) for r in results])
    weight0 = np.clip(np.stack([r[2] for r in results]), 1e-3, 1 - 1e-3)
    flow_tensor = torch.from_numpy(flow).permute(0, 3, 1, 2)
    mask_logit = torch.from_numpy(np.log(weight0 / (1 - weight0)))[:, None]
    return flow_tensor.to(like.device, like.dtype), mask_logit.to(like.device, like.dtype)
