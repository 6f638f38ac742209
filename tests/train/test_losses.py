"""Each loss term: zero on a perfect prediction, sensitive to what it claims to measure."""

from __future__ import annotations

import logging

import cv2
import pytest
import torch

from emavfi import losses
from emavfi.losses import (
    LossConfig,
    TrainingLoss,
    VGGPerceptualLoss,
    charbonnier,
    color_loss,
    flow_distillation_loss,
    gaussian_blur,
    gaussian_kernel,
    gradient_loss,
    laplacian_pyramid_loss,
    rgb_to_ycbcr,
    temporal_loss,
)
from emavfi.models.contract import InterpolationOutput


@pytest.fixture
def frames():
    gen = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 32, 32, generator=gen), torch.rand(2, 3, 32, 32, generator=gen)


@pytest.mark.parametrize("loss", [charbonnier, color_loss, gradient_loss, laplacian_pyramid_loss])
def test_image_losses_zero_when_equal_positive_otherwise(loss, frames):
    pred, truth = frames
    assert loss(truth, truth).item() < 1.1e-3  # Charbonnier's floor is eps
    assert loss(pred, truth).item() > 0.01


def test_color_loss_sees_colour_cast_not_texture(frames):
    _, truth = frames
    cast = truth.clone()
    cast[:, 2] = (cast[:, 2] + 0.1).clamp(0, 1)  # bluer
    noise = (truth + 0.1 * torch.randn_like(truth)).clamp(0, 1)  # zero-mean texture change
    assert color_loss(cast, truth) > 2 * color_loss(noise, truth)


def test_gradient_loss_ignores_constant_offset_and_uses_order():
    ramp = torch.linspace(0, 1, 32).expand(1, 3, 32, 32).contiguous()
    assert gradient_loss(ramp * 0.5 + 0.2, ramp * 0.5, order=1).item() == pytest.approx(
        0.0, abs=1e-6
    )
    # a linear ramp differs from a flat frame in first differences but not in second ones
    flat = torch.full_like(ramp, 0.5)
    assert gradient_loss(ramp, flat, order=1).item() > 0.01
    assert gradient_loss(ramp, flat, order=2).item() == pytest.approx(0.0, abs=1e-5)


def test_temporal_loss_zero_for_one_target_and_penalises_flicker(frames):
    truth = torch.stack(frames, dim=1)  # (B=2, K=2, ...)
    times = torch.tensor([[0.25, 0.75], [0.25, 0.75]])
    assert temporal_loss(truth[:, :1], truth[:, :1], times[:, :1]).item() == 0.0
    shifted = truth + 0.1  # the same error on both frames: consistent in time
    flicker = truth.clone()
    flicker[:, 1] += 0.1  # an error on one frame only: a jump between neighbours
    assert temporal_loss(shifted, truth, times).item() < 1e-2
    assert temporal_loss(flicker, truth, times).item() > 0.09
    # unsorted timesteps give the same value as sorted ones
    swapped = temporal_loss(flicker.flip(1), truth.flip(1), times.flip(1))
    assert swapped.item() == pytest.approx(temporal_loss(flicker, truth, times).item(), rel=1e-5)


def test_flow_loss_respects_confidence_and_rescales_stages():
    target = torch.zeros(1, 4, 16, 16)
    target[:, 0] = 4.0
    good = target.clone()
    bad = torch.zeros_like(target)
    ones, zeros = torch.ones(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
    assert flow_distillation_loss([good], target, ones).item() < 0.1
    assert flow_distillation_loss([bad], target, ones).item() == pytest.approx(4.0, rel=1e-2)
    assert flow_distillation_loss([bad], target, zeros).item() == 0.0
    # a half-resolution stage is compared with the target's vectors halved
    half = torch.zeros(1, 4, 8, 8)
    half[:, 0] = 2.0
    assert flow_distillation_loss([half], target, ones).item() < 0.1


def test_ycbcr_is_opencvs_full_range_bt601(frames):
    """The colour term's YCbCr against OpenCV's float conversion (BT.601, chroma centred on 0.5)."""
    image = frames[0][:1]
    ycrcb = cv2.cvtColor(image[0].permute(1, 2, 0).numpy(), cv2.COLOR_RGB2YCrCb)
    expected = torch.from_numpy(ycrcb[..., [0, 2, 1]]).permute(2, 0, 1)[None]
    assert torch.allclose(rgb_to_ycbcr(image), expected, atol=2e-3)


def test_gaussian_kernel_follows_its_formula_and_keeps_flat_images_flat():
    kernel = gaussian_kernel(1.5, 2, torch.device("cpu"), torch.float32)
    x = torch.arange(-3.0, 4.0)
    expected = torch.outer(torch.exp(-(x**2) / 4.5), torch.exp(-(x**2) / 4.5))
    assert kernel.shape == (2, 1, 7, 7)
    assert torch.allclose(kernel[1, 0], expected / expected.sum(), atol=1e-7)
    flat = torch.full((1, 3, 9, 9), 0.3)
    assert torch.allclose(gaussian_blur(flat, 2.0), flat, atol=1e-6)


@pytest.mark.parametrize("axis", [-1, -2])
def test_gradient_loss_compares_the_differences_along_both_axes(axis):
    """A ramp along one axis against a flat frame: only that axis' first differences (1/31
    per step over 32 pixels) differ, and the loss is their mean."""
    ramp = torch.linspace(0, 1, 32)
    ramp = (ramp.view(1, 1, 1, 32) if axis == -1 else ramp.view(1, 1, 32, 1)).expand(1, 3, 32, 32)
    flat = torch.zeros_like(ramp)
    assert gradient_loss(ramp, flat).item() == pytest.approx(1 / 31, rel=1e-4)


def test_temporal_loss_weights_close_pairs_more_and_sorts_targets_by_time():
    """Targets at t = 0.1, 0.2, 0.9: gaps 0.1 and 0.7, weights 1/0.1 and 1/0.7 normalised
    (0.875 and 0.125). An error on the t = 0.1 frame alone only changes the first difference."""
    gen = torch.Generator().manual_seed(0)
    truth = torch.rand(1, 3, 3, 8, 8, generator=gen)
    times = torch.tensor([[0.1, 0.2, 0.9]])
    early, late = truth.clone(), truth.clone()
    early[:, 0] += 0.1  # changes the pair (0.1, 0.2)
    late[:, 2] += 0.1  # changes the pair (0.2, 0.9)
    rho, floor = (0.1**2 + 1e-6) ** 0.5, 1e-3  # Charbonnier of 0.1 and of no error
    assert temporal_loss(early, truth, times).item() == pytest.approx(
        0.875 * rho + 0.125 * floor, rel=1e-4
    )
    assert temporal_loss(late, truth, times).item() == pytest.approx(
        0.875 * floor + 0.125 * rho, rel=1e-4
    )
    assert temporal_loss(early, truth, times, alpha=0.0).item() == pytest.approx(
        0.5 * rho + 0.5 * floor, rel=1e-4
    )
    # the same window handed over in another order is sorted by time first
    order = [2, 0, 1]
    shuffled = temporal_loss(early[:, order], truth[:, order], times[:, order])
    assert shuffled.item() == pytest.approx(0.875 * rho + 0.125 * floor, rel=1e-4)


def test_laplacian_loss_weights_level_l_by_two_to_the_l(frames):
    """The sum over levels of 2^l times the mean band difference, written out with the
    pyramid's own down/up steps (each level checked for what it should hold below)."""
    pred, truth = frames
    expected, p, g = 0.0, pred, truth
    for level in range(5):
        down_p, down_g = losses._pyramid_down(p), losses._pyramid_down(g)
        band_p = p - losses._pyramid_up(down_p, p.shape[-2:])
        band_g = g - losses._pyramid_up(down_g, g.shape[-2:])
        expected += 2**level * float((band_p - band_g).abs().mean())
        p, g = down_p, down_g
    assert laplacian_pyramid_loss(pred, truth).item() == pytest.approx(expected, rel=1e-5)
    # the steps: 2x average pooling of the blurred frame, nearest upsampling then the blur
    small = losses._pyramid_down(pred)
    assert small.shape[-2:] == (16, 16)
    assert torch.allclose(small, torch.nn.functional.avg_pool2d(gaussian_blur(pred, 1.0), 2))
    # a constant offset lives in no band: the pyramid sees edges and texture, not brightness
    assert laplacian_pyramid_loss(truth + 0.2, truth).item() == pytest.approx(0.0, abs=1e-5)


def test_flow_loss_weights_finer_stages_more_and_averages_over_confident_pixels():
    target = torch.zeros(1, 4, 16, 16)
    target[:, 0] = 4.0
    good, bad = target.clone(), torch.zeros_like(target)
    ones = torch.ones(1, 1, 16, 16)
    # gamma^(S-1-s): the final stage counts 1, the one before it 0.8
    assert flow_distillation_loss([bad, good], target, ones).item() == pytest.approx(
        0.8 * 4.0 + 0.02, rel=1e-2
    )
    assert flow_distillation_loss([good, bad], target, ones).item() == pytest.approx(
        4.0 + 0.8 * 0.02, rel=1e-2
    )
    # the mean is over the confident pixels: half the frame trusted, the same error
    half = ones.clone()
    half[..., 8:] = 0.0
    assert flow_distillation_loss([bad], target, half).item() == pytest.approx(4.0, rel=1e-2)
    # confidence in [0, 1] weighs each pixel: wrong only where the weight is 0.25
    partly = target.clone()
    partly[..., 8:] = 0.0
    weights = torch.where(torch.arange(16) < 8, 1.0, 0.25).expand(1, 1, 16, 16)
    expected = (0.25 * 4.0 * 128 + 1.0 * 0.02 * 128) / (0.25 * 128 + 128)
    assert flow_distillation_loss([partly], target, weights).item() == pytest.approx(
        expected, rel=1e-2
    )


def test_vgg_off_without_weights_logs(caplog, tmp_path, monkeypatch):
    monkeypatch.setattr(losses, "_hub_vgg19_file", lambda: None)
    with caplog.at_level(logging.WARNING, logger="emavfi.losses"):
        assert VGGPerceptualLoss.create(None) is None
        assert VGGPerceptualLoss.create(str(tmp_path / "missing.pth")) is None
    assert "VGG perceptual loss disabled" in caplog.text
    total_without, terms = TrainingLoss(LossConfig(vgg_weight=0.05), None)(_output(), _batch())
    assert "vgg" not in terms and torch.isfinite(total_without)


def test_vgg_with_a_weights_file(tmp_path, frames):
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["E"])[:27]
    path = tmp_path / "vgg.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    vgg = VGGPerceptualLoss.create(str(path))
    pred, truth = frames
    assert vgg(truth, truth).item() == 0.0
    assert vgg(pred, truth).item() > 0.0
    assert not any(p.requires_grad for p in vgg.parameters())


def test_training_loss_is_the_weighted_sum(frames):
    output, batch = _output(), _batch()
    weights = LossConfig(vgg_weight=0.0, flow_weight=0.5, temporal_weight=0.3)
    total, terms = TrainingLoss(weights)(output, batch)
    assert set(terms) == {
        "charbonnier",
        "color",
        "gradient",
        "laplacian",
        "flow",
    }  # K == 1: no temporal
    assert total.item() == pytest.approx(sum(v.item() for v in terms.values()), rel=1e-5)
    assert terms["charbonnier"].item() == pytest.approx(
        0.6 * charbonnier(output.pred, batch["targets"][:, 0]).item()
    )
    off = TrainingLoss(
        LossConfig(
            vgg_weight=0, color_weight=0, gradient_weight=0, laplacian_weight=0, flow_weight=0
        )
    )(output, batch)[1]
    assert set(off) == {"charbonnier"}


def test_training_loss_adds_half_of_every_merged_stage_and_masks_the_mask_term():
    """w_lap (L_lap(P, G) + 0.5 sum_s L_lap(M_s, G)); L_mask the mean error where mask_valid."""
    output, batch = _output(), _batch()
    gen = torch.Generator().manual_seed(3)
    coarse = torch.rand(2, 3, 16, 16, generator=gen)
    output.merged_stages = [coarse, output.merged]
    output.mask = torch.full((2, 1, 16, 16), 0.75)
    batch["mask_target"] = torch.full((2, 1, 1, 16, 16), 0.5)
    batch["mask_target"][..., 8:] = 0.0  # wrong there, but not trusted
    batch["mask_valid"] = torch.ones(2, 1, 1, 16, 16)
    batch["mask_valid"][..., 8:] = 0.0
    config = LossConfig(vgg_weight=0.0, laplacian_weight=0.5, mask_weight=2.0)
    _, terms = TrainingLoss(config)(output, batch)
    gt = batch["targets"][:, 0]
    expected = laplacian_pyramid_loss(output.pred, gt) + 0.5 * (
        laplacian_pyramid_loss(coarse, gt) + laplacian_pyramid_loss(output.merged, gt)
    )
    assert terms["laplacian"].item() == pytest.approx(0.5 * expected.item(), rel=1e-5)
    assert terms["mask"].item() == pytest.approx(2.0 * 0.25, rel=1e-5)


def _batch():
    gen = torch.Generator().manual_seed(1)
    return {
        "targets": torch.rand(2, 1, 3, 16, 16, generator=gen),
        "timesteps": torch.full((2, 1), 0.5),
        "flow": torch.randn(2, 1, 4, 16, 16, generator=gen),
        "flow_valid": torch.ones(2, 1, 1, 16, 16),
    }


def _output():
    gen = torch.Generator().manual_seed(2)
    flow = torch.randn(2, 4, 16, 16, generator=gen)
    pred = torch.rand(2, 3, 16, 16, generator=gen)
    return InterpolationOutput(pred=pred, merged=pred * 0.9, flow=flow)
