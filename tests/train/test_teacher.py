"""The DIS teacher: correct backward flows on a known motion, ground truth left alone."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from emavfi.train.teacher import DISTeacher, add_teacher_flows


def _texture(size: int = 96) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    return F.interpolate(torch.rand(1, 3, 16, 16, generator=gen), size=(size, size), mode="bicubic")[0].clamp(0, 1)


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
    sample = {"img0": base[:, :64, :64], "img1": base[:, 4:68, 4:68],
              "targets": torch.stack([base[:, 2:66, 2:66], base[:, 2:66, 2:66]]),
              "flow": torch.zeros(2, 4, 64, 64), "flow_valid": torch.zeros(2, 1, 64, 64)}
    sample["flow"][0] = 7.0
    sample["flow_valid"][0] = 1.0
    add_teacher_flows(sample, DISTeacher("fast"))
    assert torch.all(sample["flow"][0] == 7.0) and torch.all(sample["flow_valid"][0] == 1.0)
    assert sample["flow_valid"][1].mean() > 0.5
    assert abs(sample["flow"][1, 0, 16:48, 16:48].mean().item() - 2.0) < 0.5
