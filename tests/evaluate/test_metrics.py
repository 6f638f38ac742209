"""Metrics against reference values: identical frames, analytic noise, scikit-image SSIM, IE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from emavfi import metrics
from emavfi.errors import EmavfiError


def _image(seed: int, height: int = 40, width: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(height, width, 3)), axis=0), axis=1)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (smooth * 255).round().astype(np.uint8)


def test_identical_frames_give_inf_psnr_unit_ssim_zero_ie():
    image = _image(0)
    assert metrics.psnr(image, image.copy()) == math.inf
    assert metrics.ssim(image, image.copy()) == pytest.approx(1.0, abs=1e-12)
    assert metrics.interpolation_error(image, image.copy()) == 0.0


def test_psnr_matches_analytic_value_for_known_error():
    gt = np.full((16, 16, 3), 100, np.uint8)
    pred = gt.copy()
    pred[::2] += 8  # half the pixels off by 8: MSE = 32
    assert metrics.mse(pred, gt) == pytest.approx(32.0)
    assert metrics.psnr(pred, gt) == pytest.approx(10 * math.log10(255**2 / 32.0))


def test_psnr_of_gaussian_noise_is_near_analytic():
    rng = np.random.default_rng(1)
    gt = np.full((128, 128, 3), 128, np.uint8)
    noise = np.round(rng.normal(0, 5.0, gt.shape))
    pred = np.clip(gt + noise, 0, 255).astype(np.uint8)
    expected = 10 * math.log10(
        255**2 / 25.0
    )  # sigma 5 -> MSE ~25 (+1/12 rounding is already inside)
    assert metrics.psnr(pred, gt) == pytest.approx(expected, abs=0.1)


def test_float_prediction_is_rounded_to_8_bit():
    gt = _image(2)
    almost = gt.astype(np.float64) / 255 + 0.4 / 255  # rounds back to gt
    assert metrics.psnr(almost, gt) == math.inf
    tensor = torch.from_numpy(gt).permute(2, 0, 1).float() / 255
    assert metrics.psnr(tensor[None], gt) == math.inf


@pytest.mark.parametrize("seeds", [(3, 4), (5, 6)])
def test_ssim_matches_scikit_image(seeds):
    a, b = _image(seeds[0]), _image(seeds[1])
    noisy = np.clip(
        a.astype(int) + np.random.default_rng(9).integers(-20, 21, a.shape), 0, 255
    ).astype(np.uint8)
    for other in (b, noisy):
        reference = structural_similarity(
            a,
            other,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
            channel_axis=2,
        )
        assert metrics.ssim(a, other) == pytest.approx(reference, abs=1e-9)


def test_interpolation_error_on_known_difference():
    gt = np.zeros((10, 10, 3), np.uint8)
    pred = gt.copy()
    pred[..., 0] = 3
    pred[..., 1] = 4  # every pixel's RGB difference has L2 norm 5
    assert metrics.interpolation_error(pred, gt) == pytest.approx(5.0)
    pred[:5] = 0  # half the pixels exact: RMS = sqrt(25 / 2)
    assert metrics.interpolation_error(pred, gt) == pytest.approx(math.sqrt(12.5))


def test_size_mismatch_and_tiny_frames_are_clear_errors():
    with pytest.raises(EmavfiError, match="differ in size"):
        metrics.psnr(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(EmavfiError, match="at least 11x11"):
        metrics.ssim(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))


def test_laplacian_variance_of_one_bright_pixel_is_analytic():
    # Laplacian of a single pixel of value v: -4v at it, v at its 4 neighbours, 0 elsewhere;
    # its mean is 0, so the variance is (16 + 4) v^2 / (H W). Grey of (v, v, v) is v.
    image = np.zeros((20, 30, 3), np.uint8)
    image[9, 12] = 100
    assert metrics.laplacian_variance(image) == pytest.approx(20 * 100**2 / (20 * 30))


def test_sharpness_ratio_is_one_for_a_copy_and_lower_for_a_blurred_output():
    import cv2

    frame0, frame1 = _texture(0), _texture(1)
    assert metrics.sharpness_ratio(frame0, frame0, frame0) == 1.0
    copy_ratio = metrics.sharpness_ratio(frame0, frame0, frame1)  # an input copy: about 1
    assert copy_ratio == pytest.approx(1.0, abs=0.1)
    blurred = cv2.GaussianBlur(frame0, (0, 0), 1.0)
    blurred_ratio = metrics.sharpness_ratio(blurred, frame0, frame1)
    assert blurred_ratio < 0.5 * copy_ratio
    # Float frames in [0, 1] are rounded to 8 bit first, like every other metric.
    assert metrics.sharpness_ratio(blurred / 255.0, frame0, frame1) == blurred_ratio


def test_sharpness_ratio_of_flat_inputs():
    flat = np.full((16, 16, 3), 128, np.uint8)
    assert metrics.sharpness_ratio(flat, flat, flat) == 1.0
    assert metrics.sharpness_ratio(_texture(0)[:16, :16], flat, flat) == math.inf


def _texture(seed: int) -> np.ndarray:
    """Fine random texture (sharp edges everywhere), 48x64 RGB."""
    rng = np.random.default_rng(seed)
    return np.repeat(np.repeat(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), 2, 0), 2, 1)
