"""LPIPS from a user-given weights file (never downloaded), and "n/a" without one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emavfi.cli.main import main
from emavfi.errors import EmavfiError
from emavfi.evaluate.lpips import LPIPS, load_lpips, lpips_distance


@pytest.fixture(scope="module")
def reference() -> LPIPS:
    """A seeded random LPIPS-alex whose weights the tests save in the lpips package's layout."""
    torch.manual_seed(0)
    return LPIPS("alex")


def _weights_file(
    reference: LPIPS, path: Path, with_backbone: bool = True, lin_scale: float = 1.0
) -> Path:
    state = {
        f"lin{i}.model.1.weight": lin.weight.detach().abs() * lin_scale
        for i, lin in enumerate(reference.lins)
    }
    if with_backbone:
        state.update({f"net.features.{k}": v for k, v in reference.features.state_dict().items()})
    torch.save(state, path)
    return path


@pytest.fixture(autouse=True)
def _no_hub_cache(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


def test_lpips_is_zero_for_identical_and_positive_symmetric_otherwise(
    tmp_path: Path, reference: LPIPS, moving_frame
):
    model = load_lpips(_weights_file(reference, tmp_path / "alex.pth"))
    a, b = moving_frame(5, seed=1), moving_frame(12, seed=2)
    assert lpips_distance(model, a, a) == pytest.approx(0.0, abs=1e-7)
    distance = lpips_distance(model, a, b)
    assert distance > 0 and lpips_distance(model, b, a) == pytest.approx(distance, rel=1e-5)


def test_backbone_sees_lpips_scaled_input(reference: LPIPS):
    """LPIPS maps [0, 1] to [-1, 1], then applies its ScalingLayer: (x - shift) / scale per
    channel. No reference LPIPS weights exist offline, so the input the backbone receives is
    checked against those constants (lpips v0.1) through the uint8 entry point."""
    seen = []
    hook = reference.features[0].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    black, white = np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8)
    grey = np.full((64, 64, 3), 51, np.uint8)  # 0.2 -> -0.6
    try:
        lpips_distance(reference, black, white)
        lpips_distance(reference, grey, grey)
    finally:
        hook.remove()
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    for image, value in zip(seen, (-1.0, 1.0, -0.6, -0.6)):
        assert image.shape == (1, 3, 64, 64)
        assert torch.allclose(image, ((value - shift) / scale).expand_as(image), atol=1e-5)


def test_linear_layers_are_the_ones_loaded(tmp_path: Path, reference: LPIPS, moving_frame):
    a, b = moving_frame(5, seed=1), moving_frame(12, seed=2)
    once = lpips_distance(load_lpips(_weights_file(reference, tmp_path / "one.pth")), a, b)
    twice = lpips_distance(
        load_lpips(_weights_file(reference, tmp_path / "two.pth", lin_scale=2.0)), a, b
    )
    assert twice == pytest.approx(2 * once, rel=1e-5)


def test_missing_or_incomplete_weights_say_why(tmp_path: Path, reference: LPIPS):
    with pytest.raises(EmavfiError, match="not found"):
        load_lpips(tmp_path / "nothing.pth")
    with pytest.raises(EmavfiError, match="needs the torchvision alex backbone"):
        load_lpips(_weights_file(reference, tmp_path / "lin_only.pth", with_backbone=False))
    with pytest.raises(EmavfiError, match="does not fit LPIPS-vgg"):
        load_lpips(_weights_file(reference, tmp_path / "alex.pth"), net="vgg")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(EmavfiError, match="cannot read LPIPS weights"):
        load_lpips(tmp_path / "junk.pth")


def test_eval_reports_lpips_with_weights(tmp_path: Path, triplet_root: Path, reference: LPIPS):
    weights = _weights_file(reference, tmp_path / "alex.pth")
    out = tmp_path / "out"
    assert (
        main(
            [
                "eval",
                "--model",
                "blend",
                "--device",
                "cpu",
                "--dataset",
                f"triplet:{triplet_root}",
                "--lpips-weights",
                str(weights),
                "-o",
                str(out),
                "--no-html",
            ]
        )
        == 0
    )
    data = json.loads((out / "results.json").read_text())
    values = [s["lpips"] for s in data["samples"]]
    assert all(isinstance(v, float) and v > 0 for v in values)
    assert data["summary"]["triplets"]["blend"]["lpips"] == pytest.approx(float(np.mean(values)))
    assert "LPIPS" in (out / "results.md").read_text().splitlines()[0]
