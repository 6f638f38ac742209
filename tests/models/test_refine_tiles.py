"""Large frames are refined in tiles (models/ema_vfi/refine.py) and their full-size
convolutions run in bands of rows (models/contract.conv_in_bands): the same frame, no seams."""

import pytest
import torch

from emavfi.models import contract
from emavfi.models.ema_vfi import net, refine
from emavfi.models.registry import create_model, get_spec
from emavfi.runtime.backends import sample_pair

TINY = {"width": 4, "depths": [1, 1, 1, 2, 2]}
HEIGHT, WIDTH = 256, 416
CORE_PIXELS = 96 * 96  # cores of 96 x 96: 3 x 5 tiles on this frame


@pytest.mark.parametrize(
    "height, width, core_pixels",
    [(256, 416, CORE_PIXELS), (2176, 3840, 1920 * 1088), (64, 96, 4096)],
)
def test_tiles_cover_the_frame_once_with_corners_on_the_32_grid(height, width, core_pixels):
    covered = torch.zeros(height, width, dtype=torch.int32)
    for rows, cols, core_rows, core_cols in refine.tiles(height, width, core_pixels):
        assert rows.start % 32 == 0 and cols.start % 32 == 0
        assert 0 <= rows.start < rows.stop <= height and 0 <= cols.start < cols.stop <= width
        covered[rows, cols][core_rows, core_cols] += 1
        core_top, core_left = rows.start + core_rows.start, cols.start + core_cols.start
        # a margin of HALO around the core, except where the frame ends
        assert core_top - rows.start == min(refine.HALO, core_top)
        assert core_left - cols.start == min(refine.HALO, core_left)
    assert bool((covered == 1).all())


def _model_and_pair():
    """ema-cpu's architecture at a tiny width (DIS warm start: real motion), the sample pair."""
    torch.manual_seed(0)
    overrides = {k: v for k, v in TINY.items() if k in get_spec("ema-cpu").arch}
    model = create_model("ema-cpu", **overrides).eval()
    img0, img1 = sample_pair(HEIGHT, WIDTH)
    return model, img0, img1


def _tile_borders(height: int, width: int) -> torch.Tensor:
    """True within 2 pixels of a boundary between two tiles' cores."""
    border = torch.zeros(height, width, dtype=torch.bool)
    for rows, cols, core_rows, core_cols in refine.tiles(height, width, CORE_PIXELS):
        top, left = rows.start + core_rows.start, cols.start + core_cols.start
        bottom, right = rows.start + core_rows.stop, cols.start + core_cols.stop
        if top:
            border[top - 2 : top + 2, left:right] = True
        if left:
            border[top:bottom, left - 2 : left + 2] = True
    return border


def _errors(model, img0, img1) -> tuple[float, float]:
    """Largest difference between tiled and whole-frame output: along tile borders, elsewhere."""
    with torch.no_grad():
        model.refine_tile_pixels = None
        whole = model(img0, img1, 0.4)
        model.refine_tile_pixels = CORE_PIXELS
        tiled = model(img0, img1, 0.4)
    error = (tiled - whole).abs().amax(dim=(0, 1))
    border = _tile_borders(HEIGHT, WIDTH)
    return float(error[border].max()), float(error[~border].max())


def test_tiled_refinement_is_the_whole_frames_without_seams():
    model, img0, img1 = _model_and_pair()
    at_borders, elsewhere = _errors(model, img0, img1)
    assert elsewhere < 1e-5
    assert at_borders < 1e-5  # a seam would show as a step along the borders


def test_tiles_without_a_margin_would_show_seams(monkeypatch):
    """The check above can fail: tiles cut without their margin differ along their borders."""
    model, img0, img1 = _model_and_pair()
    monkeypatch.setattr(refine, "HALO", 0)
    at_borders, _ = _errors(model, img0, img1)
    assert at_borders > 1e-2  # far above the 1e-5 the tiles with their margin keep to


def test_frames_up_to_1080p_are_refined_whole(monkeypatch):
    model, img0, img1 = _model_and_pair()
    monkeypatch.setattr(net, "tiles", lambda *args: pytest.fail("tiled a small frame"))
    with torch.no_grad():
        model(img0, img1, 0.5)
    assert model.refine_tile_pixels >= 1920 * 1088


def test_a_frame_through_banded_convolutions_is_the_whole_frames(monkeypatch):
    model, img0, img1 = _model_and_pair()
    with torch.no_grad():
        whole = model(img0, img1, 0.4)
        monkeypatch.setattr(contract, "BAND_ABOVE_PIXELS", 0)
        monkeypatch.setattr(contract, "BAND_PIXELS", WIDTH * 40)  # extractor 7 bands, head 2
        calls = []
        for convs in (model.feature_bone.block1.conv, model.block[1].conv):
            convs.register_forward_hook(lambda module, args, out: calls.append(module))
        banded = model(img0, img1, 0.4)
    extractor, head = model.feature_bone.block1.conv, model.block[1].conv
    assert [c is extractor for c in calls].count(True) == 7  # 256 rows in bands of 40
    assert [c is head for c in calls].count(True) == 2  # its map: 128 x 208, bands of 80 rows
    assert float((banded - whole).abs().max()) < 1e-5
