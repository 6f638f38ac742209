"""The DIS teacher: correct backward flows on a known motion, ground truth left alone."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from emavfi.train.teacher import DISTeacher, add_teacher_flows


def _texture(size: int = 96) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    return F.interpolate(
        torch.rand(1, 3, 16, 16, generator=gen), size=(size, size), mode="bicubic"
    )[0].clamp(0, 1)


def test_teacher_flow_on_a_translation():
    base = _texture(96)
    img0, target, img1 = base[:, 8:72, 8:72], base[:, 10:74, 11:75], base[:, 12:76, 14:78]
    flow, confidence = DISTeacher("medium").flows(img0, img1, target)
    assert flow.shape == (4, 64, 64) and confidence.shape == (1, 64, 64)
    centre = flow[:, 16:48, 16:48].mean(dim=(1, 2))
    # target(x, y) = img0(x + 3, y + 2) = img1(x - 3, y - 2)
    assert torch.allclose(centre, torch.tensor([3.0, 2.0, -3.0, -2.0]), atol=0.3)
    assert confidence[:, 16:48, 16:48].mean() > 0.8


def test_ground_truth_flow_is_kept_and_missing_flow_filled():
    base = _texture(80)
    sample = {
        "img0": base[:, :64, :64],
        "img1": base[:, 4:68, 4:68],
        "targets": torch.stack([base[:, 2:66, 2:66], base[:, 2:66, 2:66]]),
        "flow": torch.zeros(2, 4, 64, 64),
        "flow_valid": torch.zeros(2, 1, 64, 64),
    }
    sample["flow"][0] = 7.0
    sample["flow_valid"][0] = 1.0
    add_teacher_flows(sample, DISTeacher("fast"))
    assert torch.all(sample["flow"][0] == 7.0) and torch.all(sample["flow_valid"][0] == 1.0)
    assert sample["flow_valid"][1].mean() > 0.5
    assert abs(sample["flow"][1, 0, 16:48, 16:48].mean().item() - 2.0) < 0.5


# ----- the Practical-RIFE teacher on the training device -----


def _rife_teacher(**options):
    from emavfi.models.registry import create_model
    from emavfi.train.teacher import RifeTeacher

    torch.manual_seed(0)
    network = create_model("rife-4.25", widths=[8, 8, 8, 8, 8])
    return RifeTeacher(network, network.spec.channel_order, **options)


def _real_batch(targets=None, batch=2):
    base = _texture(80)
    img0 = base[:, :64, :64][None].repeat(batch, 1, 1, 1)
    img1 = base[:, 4:68, 4:68][None].repeat(batch, 1, 1, 1)
    truth = (
        base[:, 2:66, 2:66][None, None].repeat(batch, 1, 1, 1, 1) if targets is None else targets
    )
    return {
        "img0": img0,
        "img1": img1,
        "targets": truth.clone(),
        "timesteps": torch.full((batch, 1), 0.5),
        "flow": torch.zeros(batch, 1, 4, 64, 64),
        "flow_valid": torch.zeros(batch, 1, 1, 64, 64),
    }


def test_rife_teacher_weights_pixels_by_its_error_to_the_ground_truth():
    teacher = _rife_teacher(sigma=0.04)
    pred, flow, mask = teacher._run(
        *(_real_batch()[k] for k in ("img0", "img1")), torch.full((2,), 0.5)
    )
    # ground truth equal to the teacher's frame: trusted everywhere; far from it: nowhere.
    right = teacher.apply(_real_batch(targets=pred[:, None].clamp(0, 1)))
    wrong = teacher.apply(_real_batch(targets=(1 - pred[:, None]).clamp(0, 1)))
    assert right["flow_valid"].mean() > 0.95 and wrong["flow_valid"].mean() < 0.05
    assert torch.allclose(right["flow"][:, 0], flow) and torch.allclose(
        right["mask_target"][:, 0], mask
    )
    assert torch.equal(right["mask_valid"], right["flow_valid"])


def test_rife_teacher_error_is_the_channel_mean_averaged_over_5x5_pixels():
    """e = 5x5 mean of the channel-mean |teacher frame - ground truth|; w = exp(-e^2 / 2 sigma^2).
    The ground truth is the teacher's own frame but for one pixel of one channel, 0.6 off."""
    teacher = _rife_teacher(sigma=0.04)
    batch = _real_batch()
    pred, _, _ = teacher._run(batch["img0"], batch["img1"], torch.full((2,), 0.5))
    targets = pred[:, None].clone()
    targets[0, 0, 1, 20, 30] += 0.6  # green only
    weight = teacher.apply(_real_batch(targets=targets))["flow_valid"][:, 0, 0]
    error = 0.6 / 3 / 25  # the channel mean, then the mean of the 5x5 window around it
    around = weight[0, 18:23, 28:33]
    expected = torch.full_like(around, math.exp(-(error**2) / (2 * 0.04**2)))  # 0.980
    assert torch.allclose(around, expected, atol=1e-5)
    weight[0, 18:23, 28:33] = 1.0
    assert torch.allclose(weight, torch.ones_like(weight), atol=1e-6)  # exact elsewhere


def test_rife_teacher_pads_to_its_multiple_and_channel_order():
    teacher = _rife_teacher()
    batch = _real_batch()
    crop = {k: v[..., :40, :56] for k, v in batch.items() if k != "timesteps"} | {
        "timesteps": batch["timesteps"]
    }
    out = teacher.apply(crop)  # 40x56 is not a multiple of 64: padded, then cropped back
    assert out["flow"].shape == (2, 1, 4, 40, 56) and out["mask_target"].shape == (2, 1, 1, 40, 56)
    # the network sees BGR: its frame from RGB inputs equals its BGR frame flipped back
    img0, img1 = crop["img0"], crop["img1"]
    pad = (0, 8, 0, 24)
    direct = teacher.network(
        F.pad(img0.flip(1), pad, mode="replicate"), F.pad(img1.flip(1), pad, mode="replicate"), 0.5
    )
    assert torch.allclose(
        teacher._run(img0, img1, torch.full((2,), 0.5))[0], direct[..., :40, :56].flip(1), atol=1e-6
    )


def test_rife_teacher_keeps_ground_truth_flow_and_sets_free_timesteps():
    teacher = _rife_teacher(free_t=1.0, free_t_weight=0.5)
    batch = _real_batch()
    batch["flow"][0] = 7.0
    batch["flow_valid"][0] = 1.0
    before = batch["targets"].clone()
    out = teacher.apply(batch)
    assert torch.all(out["flow"][0] == 7.0) and torch.all(out["flow_valid"][0] == 1.0)
    assert torch.all(out["mask_valid"][0] == 0) and torch.equal(out["targets"][0], before[0])
    # the other sample: a new timestep, the teacher's own frame there as its target, weight 0.5
    t = out["timesteps"][1, 0]
    assert 0.05 <= t <= 0.95 and t != 0.5
    pred, _, _ = teacher._run(out["img0"][1:], out["img1"][1:], t.view(1))
    assert torch.allclose(out["targets"][1, 0], pred[0].clamp(0, 1)) and torch.all(
        out["flow_valid"][1] == 0.5
    )
