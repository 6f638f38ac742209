"""Image-quality metrics for frame interpolation, computed the way VFI papers do.

Conventions (stated once, used everywhere in ``emavfi eval``):

* Frames are ``HxWx3`` RGB. A prediction given as float in [0, 1] is first rounded to 8 bit
  (``round(x * 255)``), because a saved frame is 8 bit; ground truth is 8-bit as loaded.
* Every metric covers the whole frame (no border crop) and all three RGB channels.
* PSNR: ``10 log10(255^2 / MSE)``, MSE over all pixels and channels; identical frames give
  ``inf`` (averages that include an ``inf`` are ``inf``; the JSON writes it as ``"inf"``).
* SSIM: Wang et al. 2004 with the 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  data range 255, population covariance, the 'valid' part of the filtered maps (5 px border
  dropped, as the reference MATLAB code), computed per RGB channel and averaged. This equals
  ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255, channel_axis=2)``.
* IE: the Middlebury interpolation error of Baker et al. (IJCV 2011), the root mean square over
  pixels of the L2 norm of the RGB difference in 8-bit units:
  ``sqrt(mean_xy(sum_c (pred - gt)^2))``.
* LPIPS (Zhang et al. 2018) lives in ``emavfi.evaluate.lpips``; it needs weights that are not
  shipped, so it is optional.
* Sharpness ratio: the variance of the Laplacian (the usual focus measure) of the output divided
  by the mean of the two inputs' (1: as sharp as the inputs; below 1: softer, which shows as a
  pulse of blur at every synthesised frame). Computed on the 8-bit grey image (ITU-R BT.601
  luma, OpenCV's ``RGB2GRAY``) with the 3x3 kernel ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``
  (``cv2.Laplacian(grey, cv2.CV_64F)``, border reflected), the same way for every model.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from emavfi.errors import EmavfiError
from emavfi.imageio import to_uint8

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _pair(
    pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    pred8, gt8 = to_uint8(pred), to_uint8(gt)
    if pred8.shape != gt8.shape:
        raise EmavfiError(f"prediction {pred8.shape} and ground truth {gt8.shape} differ in size")
    if pred8.ndim != 3 or pred8.shape[2] != 3:
        raise EmavfiError(f"expected HxWx3 RGB frames, got shape {pred8.shape}")
    return pred8, gt8


def mse(pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor) -> float:
    """Mean squared 8-bit difference over all pixels and channels."""
    pred8, gt8 = _pair(pred, gt)
    diff = pred8.astype(np.float64) - gt8.astype(np.float64)
    return float(np.mean(diff * diff))


def psnr(pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor) -> float:
    """PSNR in dB of 8-bit RGB frames (``inf`` when they are identical)."""
    error = mse(pred, gt)
    if error == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / error)


def interpolation_error(pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor) -> float:
    """Middlebury IE (Baker et al.): RMS over pixels of the RGB difference's L2 norm, 8-bit units."""
    pred8, gt8 = _pair(pred, gt)
    diff = pred8.astype(np.float64) - gt8.astype(np.float64)
    return float(math.sqrt(np.mean(np.sum(diff * diff, axis=2))))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """A normalised 1-D Gaussian of ``size`` taps, float64, shape ``(size,)``."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    weights = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return weights / weights.sum()


def _filter_valid(images: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter, 'valid' output. ``images``: (N, 1, H, W) float64."""
    size = window.numel()
    images = F.conv2d(images, window.view(1, 1, 1, size))
    return F.conv2d(images, window.view(1, 1, size, 1))


def ssim(pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor) -> float:
    """SSIM of 8-bit RGB frames: 11x11 Gaussian (sigma 1.5), per channel, averaged.

    Frames smaller than 11x11 raise EmavfiError (the window does not fit).
    """
    pred8, gt8 = _pair(pred, gt)
    height, width = pred8.shape[:2]
    if height < SSIM_WINDOW or width < SSIM_WINDOW:
        raise EmavfiError(
            f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {width}x{height}"
        )
    # (3, 1, H, W): each channel is an independent image.
    x = torch.from_numpy(pred8.astype(np.float64)).permute(2, 0, 1).unsqueeze(1)
    y = torch.from_numpy(gt8.astype(np.float64)).permute(2, 0, 1).unsqueeze(1)
    window = gaussian_window()
    mu_x, mu_y = _filter_valid(x, window), _filter_valid(y, window)
    var_x = _filter_valid(x * x, window) - mu_x * mu_x
    var_y = _filter_valid(y * y, window) - mu_y * mu_y
    cov_xy = _filter_valid(x * y, window) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * 255.0) ** 2, (SSIM_K2 * 255.0) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )
    per_channel = ssim_map.mean(dim=(1, 2, 3))
    return float(per_channel.mean())


def error_map(pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor) -> np.ndarray:
    """Per-pixel error for heatmaps: L2 norm of the 8-bit RGB difference, ``HxW`` float32."""
    pred8, gt8 = _pair(pred, gt)
    diff = pred8.astype(np.float32) - gt8.astype(np.float32)
    return np.sqrt(np.sum(diff * diff, axis=2))


def laplacian_variance(image: np.ndarray | torch.Tensor) -> float:
    """Variance of the Laplacian of the 8-bit grey image (see the module docstring)."""
    image8 = to_uint8(image)
    if image8.ndim != 3 or image8.shape[2] != 3:
        raise EmavfiError(f"expected an HxWx3 RGB frame, got shape {image8.shape}")
    grey = cv2.cvtColor(image8, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def sharpness_ratio(
    output: np.ndarray | torch.Tensor,
    input0: np.ndarray | torch.Tensor,
    input1: np.ndarray | torch.Tensor,
) -> float:
    """``laplacian_variance(output)`` over the mean of the inputs'; 1.0 when all three are flat,
    ``inf`` when only the inputs are."""
    reference = 0.5 * (laplacian_variance(input0) + laplacian_variance(input1))
    sharpness = laplacian_variance(output)
    if reference == 0.0:
        return 1.0 if sharpness == 0.0 else math.inf
    return sharpness / reference
