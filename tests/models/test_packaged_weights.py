"""The packaged default weights: they load by name and beat the cross-fade on real pairs."""

import numpy as np

from emavfi.imageio import read_image
from emavfi.interpolator import Interpolator
from emavfi.models.checkpoints import load_model
from emavfi.models.registry import DEFAULT_MODEL, get_spec
from tests.shared_paths import SHARED_DATA

MIDDLEBURY = SHARED_DATA / "middlebury"


def test_default_model_weights_load_by_name():
    model = load_model(DEFAULT_MODEL)
    spec = get_spec(DEFAULT_MODEL)
    assert model.spec.name == DEFAULT_MODEL and spec.weights
    assert sum(p.numel() for p in model.parameters()) > 1_000_000
    assert all(p.dtype.is_floating_point and p.isfinite().all() for p in model.parameters())


def test_default_model_beats_blend_on_middlebury_pairs():
    learned, blend = Interpolator(device="cpu"), Interpolator("blend", device="cpu")
    for seq in ("RubberWhale", "Urban3"):  # 584x388 and 640x480
        a = read_image(MIDDLEBURY / "other-data" / seq / "frame10.png")
        b = read_image(MIDDLEBURY / "other-data" / seq / "frame11.png")
        gt = read_image(MIDDLEBURY / "other-gt-interp" / seq / "frame10i11.png").astype(np.float64)
        psnr = lambda p, gt=gt: 10 * np.log10(255**2 / ((p.astype(np.float64) - gt) ** 2).mean())
        assert psnr(learned.frames(a, b, [0.5])[0]) > psnr(blend.frames(a, b, [0.5])[0]) + 3
