"""The weight-free engines: contract, exactness on known motion, and the Middlebury floor."""

import numpy as np
import pytest
import torch

from emavfi.models.registry import create_model, list_models
from tests.shared_paths import SHARED_DATA

MIDDLEBURY = SHARED_DATA / "middlebury"


def _textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    import cv2

    noise = rng.random((h // 4, w // 4, 3)).astype(np.float32)
    return cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


@pytest.mark.parametrize("name", list_models(learned=False))
def test_engine_contract(name):
    engine = create_model(name)
    img0, img1 = torch.rand(2, 3, 32, 48), torch.rand(2, 3, 32, 48)
    pred = engine(img0, img1, torch.tensor([0.25, 0.75]))
    assert pred.shape == (2, 3, 32, 48)
    assert pred.min() >= 0 and pred.max() <= 1
    aux = engine(img0, img1, 0.5, return_aux=True)
    assert aux.pred.shape == (2, 3, 32, 48)


def test_blend_is_cross_fade():
    img0, img1 = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    assert torch.allclose(create_model("blend")(img0, img1, 0.3), torch.full((1, 3, 8, 8), 0.3))


def test_classical_recovers_translation_at_any_t():
    """A texture shifted by 8 px: the frame at t is the texture shifted by 8t px."""
    base = _textured(96, 160)
    shift = 8
    img0 = base[:, 16 : 16 + 128]
    img1 = base[:, 16 - shift : 16 - shift + 128]  # content moves right by `shift`
    engine = create_model("classical")
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]
    for t in (0.25, 0.5):
        s = round(shift * t)
        expected = base[:, 16 - s : 16 - s + 128]
        pred = engine(to_t(img0), to_t(img1), t)[0].permute(1, 2, 0).numpy()
        inner = (slice(8, -8), slice(16, -16))
        err_interp = np.abs(pred - expected)[inner].mean()
        err_blend = np.abs((1 - t) * img0 + t * img1 - expected)[inner].mean()
        assert err_interp < 0.25 * err_blend, (t, err_interp, err_blend)
        aux = engine(to_t(img0), to_t(img1), t, return_aux=True)
        flow_t0_x = aux.flow[0, 0, 20:-20, 30:-30].median().item()
        assert abs(flow_t0_x - (-shift * t)) < 0.5


def test_classical_beats_blend_on_middlebury_pairs():
    from emavfi.imageio import read_image
    from emavfi.interpolator import Interpolator

    blend, classical = Interpolator("blend", device="cpu"), Interpolator("classical", device="cpu")
    for seq in ("Dimetrodon", "Grove2"):
        a = read_image(MIDDLEBURY / "other-data" / seq / "frame10.png")
        b = read_image(MIDDLEBURY / "other-data" / seq / "frame11.png")
        gt = read_image(MIDDLEBURY / "other-gt-interp" / seq / "frame10i11.png").astype(np.float64)
        psnr = lambda p, gt=gt: 10 * np.log10(255**2 / ((p.astype(np.float64) - gt) ** 2).mean())
        assert psnr(classical.frames(a, b, [0.5])[0]) > psnr(blend.frames(a, b, [0.5])[0]) + 2
