"""Metrics against reference values: identical frames, analytic noise, scikit-image SSIM, IE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from emavfi import metrics
from emavfi.errors import EmavfiError
from emavfi.imageio import to_uint8


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


@pytest.mark.parametrize("channel", [0, 1, 2])
def test_psnr_counts_every_channel(channel):
    gt = _image(7)
    pred = gt.copy()
    plane = gt[..., channel]
    pred[..., channel] = np.where(plane < 128, plane + 6, plane - 6)
    # an error of 6 on one channel of three: MSE = 36 / 3 = 12, whichever channel it is
    assert metrics.mse(pred, gt) == pytest.approx(12.0)
    assert metrics.psnr(pred, gt) == pytest.approx(10 * math.log10(255**2 / 12.0))


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


def test_float_prediction_rounds_to_nearest_not_down():
    gt = np.clip(_image(8), 1, 254)
    below = (gt.astype(np.float64) - 0.4) / 255  # rounds up to gt; truncation gives gt - 1
    assert metrics.psnr(below, gt) == math.inf
    above = (gt.astype(np.float64) + 0.6) / 255  # rounds up to gt + 1 everywhere: MSE = 1
    assert metrics.mse(above, gt) == pytest.approx(1.0)
    assert metrics.psnr(above, gt) == pytest.approx(10 * math.log10(255**2))
    tensor = torch.from_numpy(above).permute(2, 0, 1).float()
    assert metrics.mse(tensor, gt) == pytest.approx(1.0)


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


def test_to_uint8_rounds_clips_and_checks_tensor_shapes():
    floats = np.array([[[-0.2, 0.5, 1.3], [0.1, 0.999, 0.0]]])  # 1x2x3
    assert to_uint8(floats).dtype == np.uint8
    assert to_uint8(floats).tolist() == [[[0, 128, 255], [26, 255, 0]]]
    frame = torch.rand(3, 5, 6)
    assert to_uint8(frame[None]).shape == (5, 6, 3)
    assert np.array_equal(to_uint8(frame), to_uint8(frame.permute(1, 2, 0).numpy()))
    with pytest.raises(ValueError, match="got a batch of 2"):
        to_uint8(torch.rand(2, 3, 5, 6))
    with pytest.raises(ValueError, match=r"expected a \(3, H, W\) tensor, got \(4, 5, 6\)"):
        to_uint8(torch.rand(4, 5, 6))
    with pytest.raises(ValueError, match=r"got \(5, 6\)"):
        to_uint8(torch.rand(5, 6))


@pytest.mark.parametrize("shape", [(12, 12), (12, 12, 4), (12, 12, 1)])
def test_frames_must_be_rgb(shape):
    frame = np.zeros(shape, np.uint8)
    with pytest.raises(EmavfiError, match=rf"expected HxWx3 RGB frames, got shape \({shape[0]}, "):
        metrics.psnr(frame, frame.copy())


def test_ssim_takes_frames_down_to_the_window_size():
    image = _image(10, height=11, width=11)
    assert metrics.ssim(image, image.copy()) == pytest.approx(1.0)
    for height, width in ((11, 10), (10, 11)):
        with pytest.raises(EmavfiError, match=rf"at least 11x11, got {width}x{height}"):
            metrics.ssim(image[:height, :width], image[:height, :width].copy())


def test_error_map_is_the_per_pixel_rgb_distance():
    gt = np.full((4, 6, 3), 100, np.uint8)
    pred = gt.copy()
    pred[1, 2] = (103, 96, 100)
    pred[3, 5] = (100, 106, 92)
    errors = metrics.error_map(pred, gt)
    assert errors.dtype == np.float32 and errors.shape == (4, 6)
    expected = np.zeros((4, 6))
    expected[1, 2], expected[3, 5] = 5.0, 10.0
    assert np.array_equal(errors, expected)


def test_laplacian_variance_of_one_bright_pixel_is_analytic():
    # Laplacian of a single pixel of value v: -4v at it, v at its 4 neighbours, 0 elsewhere;
    # its mean is 0, so the variance is (16 + 4) v^2 / (H W). Grey of (v, v, v) is v.
    image = np.zeros((20, 30, 3), np.uint8)
    image[9, 12] = 100
    assert metrics.laplacian_variance(image) == pytest.approx(20 * 100**2 / (20 * 30))


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 4), (20, 30, 1)])
def test_laplacian_variance_needs_an_rgb_frame(shape):
    with pytest.raises(EmavfiError) as info:
        metrics.laplacian_variance(np.zeros(shape, np.uint8))
    assert str(info.value) == f"expected an HxWx3 RGB frame, got shape {shape}"


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
