"""Training augmentation: the original description's keys (``crop_size``, ``random_rotation``,
``horizontal_flip``, ``color_jitter``, ``random_grayscale``) plus vertical flip and temporal
reversal.

Every random parameter is drawn once per sample and applied to all its frames, so inputs and
targets stay aligned; geometric transforms also transform the ground-truth flows (a flip negates
one component, a quarter turn rotates the vectors) and temporal reversal swaps the inputs, maps
t to 1 - t and swaps the two flow halves. ``random_rotation`` turns by multiples of 90 degrees
(quarter turns only on square crops, else half turns), which keeps every pixel exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from emavfi.config import bounded
from emavfi.errors import EmavfiError


@dataclass(frozen=True)
class ColorJitter:
    """Largest relative change of each property (torchvision ColorJitter semantics; hue: fraction
    of the colour wheel, <= 0.5); 0 switches one off. The training config's ``color_jitter``."""

    brightness: float = bounded(0.2, ge=0.0)
    contrast: float = bounded(0.2, ge=0.0)
    saturation: float = bounded(0.2, ge=0.0)
    hue: float = bounded(0.1, ge=0.0, le=0.5)


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run; each can be switched off (False, 0 or None)."""

    crop_size: tuple[int, int] | None = (256, 256)  # (height, width); None keeps whole frames
    random_rotation: bool = True
    horizontal_flip: bool = True
    vertical_flip: bool = True
    color_jitter: ColorJitter | None = ColorJitter()
    random_grayscale: float = 0.2  # probability
    temporal_reversal: bool = True

    def __post_init__(self) -> None:
        if self.crop_size is not None and (len(self.crop_size) != 2 or min(self.crop_size) < 1):
            raise EmavfiError(
                f"crop_size must be [height, width] of positive sizes, got {self.crop_size}"
            )
        if not 0.0 <= self.random_grayscale <= 1.0:
            raise EmavfiError(
                f"random_grayscale is a probability in [0, 1], got {self.random_grayscale}"
            )
        if self.color_jitter is not None and not 0.0 <= self.color_jitter.hue <= 0.5:
            raise EmavfiError(f"color_jitter.hue must be in [0, 0.5], got {self.color_jitter.hue}")


DEFAULT_AUGMENTATION = AugmentConfig()
NO_AUGMENTATION = AugmentConfig(
    crop_size=None,
    random_rotation=False,
    horizontal_flip=False,
    vertical_flip=False,
    color_jitter=None,
    random_grayscale=0.0,
    temporal_reversal=False,
)


def fit_to_crop(frames: list[np.ndarray], crop_size: tuple[int, int] | None) -> list[np.ndarray]:
    """Upscale ``HxWxC`` frames (all the same size) that are smaller than the crop, keeping the
    aspect ratio. Only for frames without flow (a resize would have to scale flows too)."""
    if crop_size is None:
        return frames
    height, width = frames[0].shape[:2]
    scale = max(crop_size[0] / height, crop_size[1] / width)
    if scale <= 1:
        return frames
    size = (max(crop_size[1], round(width * scale)), max(crop_size[0], round(height * scale)))
    return [cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR) for frame in frames]


def random_crop(
    arrays: list[np.ndarray], crop_size: tuple[int, int] | None, rng: np.random.Generator
) -> list[np.ndarray]:
    """The same random ``crop_size`` window of every array (``HxW...``, all the same H, W)."""
    if crop_size is None:
        return arrays
    height, width = arrays[0].shape[:2]
    crop_h, crop_w = crop_size
    if height < crop_h or width < crop_w:
        raise EmavfiError(f"frame {width}x{height} is smaller than crop_size {crop_h}x{crop_w}")
    top = int(rng.integers(height - crop_h + 1))
    left = int(rng.integers(width - crop_w + 1))
    return [array[top : top + crop_h, left : left + crop_w] for array in arrays]


def hflip_sample(sample: dict) -> dict:
    """Mirror left-right; flows: x components negated."""
    out = {key: sample[key].flip(-1) for key in ("img0", "img1", "targets", "flow", "flow_valid")}
    out["flow"] = out["flow"] * _signs(out["flow"], x=-1.0, y=1.0)
    return {**sample, **out}


def vflip_sample(sample: dict) -> dict:
    """Mirror top-bottom; flows: y components negated."""
    out = {key: sample[key].flip(-2) for key in ("img0", "img1", "targets", "flow", "flow_valid")}
    out["flow"] = out["flow"] * _signs(out["flow"], x=1.0, y=-1.0)
    return {**sample, **out}


def rot90_sample(sample: dict, turns: int) -> dict:
    """Rotate counter-clockwise by ``turns`` quarter turns; flow (dx, dy) becomes (dy, -dx) per turn."""
    out = {
        k: torch.rot90(sample[k], turns, dims=(-2, -1))
        for k in ("img0", "img1", "targets", "flow", "flow_valid")
    }
    flow = out["flow"]
    for _ in range(turns % 4):
        flow = torch.stack([flow[:, 1], -flow[:, 0], flow[:, 3], -flow[:, 2]], dim=1)
    out["flow"] = flow
    return {**sample, **out}


def reverse_sample(sample: dict) -> dict:
    """Play backwards: swap the inputs, t -> 1 - t, swap the flow halves."""
    flow = sample["flow"]
    return {
        **sample,
        "img0": sample["img1"],
        "img1": sample["img0"],
        "timesteps": 1.0 - sample["timesteps"],
        "flow": torch.cat([flow[:, 2:4], flow[:, 0:2]], dim=1),
    }


def _signs(flow: torch.Tensor, x: float, y: float) -> torch.Tensor:
    return torch.tensor([x, y, x, y], dtype=flow.dtype, device=flow.device).view(1, 4, 1, 1)


def jitter_colors(
    frames: torch.Tensor, jitter: ColorJitter, rng: np.random.Generator
) -> torch.Tensor:
    """The same random brightness, contrast, saturation and hue change (in random order) on
    every frame of ``frames`` (N, 3, H, W) in [0, 1]."""
    factors = {
        "brightness": rng.uniform(1 - jitter.brightness, 1 + jitter.brightness),
        "contrast": rng.uniform(1 - jitter.contrast, 1 + jitter.contrast),
        "saturation": rng.uniform(1 - jitter.saturation, 1 + jitter.saturation),
        "hue": rng.uniform(-jitter.hue, jitter.hue),
    }
    operations = {
        "brightness": TF.adjust_brightness,
        "contrast": TF.adjust_contrast,
        "saturation": TF.adjust_saturation,
        "hue": rotate_hue,
    }
    for name in rng.permutation(list(operations)):
        if getattr(jitter, name):
            frames = operations[name](frames, float(factors[name]))
    return frames.clamp(0.0, 1.0)


_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rotate_hue(frames: torch.Tensor, hue: float) -> torch.Tensor:
    """Shift the hue of (N, 3, H, W) RGB frames by ``hue`` turns of the colour wheel.

    A rotation of the chroma plane in YIQ space: one 3x3 matrix, about 10x faster than the HSV
    round trip of torchvision's adjust_hue, and equal to it up to the YIQ/HSV difference.
    """
    angle = -2.0 * np.pi * hue  # sign: the direction of HSV hue
    rotation = np.array(
        [[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]]
    )
    matrix = np.linalg.inv(_RGB_TO_YIQ) @ rotation @ _RGB_TO_YIQ
    weights = torch.as_tensor(matrix, dtype=frames.dtype, device=frames.device)
    return torch.einsum("ij,njhw->nihw", weights, frames).clamp(0.0, 1.0)


def augment_sample(sample: dict, config: AugmentConfig, rng: np.random.Generator) -> dict:
    """Flips, rotation, temporal reversal, colour jitter and grayscale on a sample dict
    (ARCHITECTURE.md "Data samples": ``img0``/``img1`` (3, H, W), ``targets`` (K, 3, H, W),
    ``timesteps`` (K,), ``flow`` (K, 4, H, W), ``flow_valid`` (K, 1, H, W)). Cropping happens
    before, on the decoded arrays (`random_crop`)."""
    if config.horizontal_flip and rng.random() < 0.5:
        sample = hflip_sample(sample)
    if config.vertical_flip and rng.random() < 0.5:
        sample = vflip_sample(sample)
    if config.random_rotation:
        height, width = sample["img0"].shape[-2:]
        turns = int(rng.integers(4)) if height == width else 2 * int(rng.integers(2))
        if turns:
            sample = rot90_sample(sample, turns)
    if config.temporal_reversal and rng.random() < 0.5:
        sample = reverse_sample(sample)
    jitter = config.color_jitter
    grayscale = config.random_grayscale > 0 and rng.random() < config.random_grayscale
    if jitter is not None or grayscale:
        count = sample["targets"].shape[0]
        frames = torch.cat([sample["img0"][None], sample["img1"][None], sample["targets"]])
        if jitter is not None:
            frames = jitter_colors(frames, jitter, rng)
        if grayscale:
            frames = TF.rgb_to_grayscale(frames, num_output_channels=3)
        sample = {**sample, "img0": frames[0], "img1": frames[1], "targets": frames[2 : 2 + count]}
    return {
        key: value.contiguous() if torch.is_tensor(value) else value
        for key, value in sample.items()
    }
