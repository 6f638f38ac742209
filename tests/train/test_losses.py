"""Each loss term: zero on a perfect prediction, sensitive to what it claims to measure."""

from __future__ import annotations

import logging

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
    gradient_loss,
    laplacian_pyramid_loss,
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
