"""Scenes rendered on the device: exact flow, bounded motion, static scenes, determinism."""

from __future__ import annotations

import pytest
import torch

from emavfi.data.gpu_scenes import SceneGenerator, SceneOptions, load_textures
from emavfi.errors import EmavfiError
from emavfi.models.contract import backward_warp
from tests.shared_paths import SHARED_DATA

TEXTURES = SHARED_DATA / "textures"


@pytest.fixture(scope="module")
def textures():
    return load_textures(TEXTURES, torch.device("cpu"), limit=6)


def _inside(flow: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W): pixels whose flow lands inside the frame (no border clamping)."""
    height, width = flow.shape[-2:]
    xs = torch.arange(width).view(1, 1, width) + flow[:, 0]
    ys = torch.arange(height).view(1, height, 1) + flow[:, 1]
    return ((xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1))[:, None].float()


def _warp_error(batch: dict) -> tuple[float, float]:
    target, flow, valid = batch["targets"][:, 0], batch["flow"][:, 0], batch["flow_valid"][:, 0]
    errors = []
    for frame, part in ((batch["img0"], flow[:, :2]), (batch["img1"], flow[:, 2:])):
        mask = valid * _inside(part)
        errors.append(
            float(((backward_warp(frame, part) - target).abs() * mask).sum() / (3 * mask.sum()))
        )
    return errors[0], errors[1]


def test_background_flow_is_exact(textures):
    # One moving, rotating, zooming background: warping either input by the flow gives the target.
    scenes = SceneGenerator(
        textures, SceneOptions(max_layers=0, noise=0.0, static_fraction=0.0), seed=3
    )
    batch = scenes.sample(6, (96, 96))
    blend_error = float(
        (0.5 * (batch["img0"] + batch["img1"]) - batch["targets"][:, 0]).abs().mean()
    )
    error0, error1 = _warp_error(batch)
    assert batch["flow"].abs().amax() > 8  # it really moves
    assert error0 < 0.006 and error1 < 0.006  # about 1.5/255: bilinear resampling only
    assert blend_error > 5 * max(error0, error1)


def test_layers_occlude_and_flow_stays_right_where_valid(textures):
    scenes = SceneGenerator(
        textures, SceneOptions(max_layers=4, noise=0.0, static_fraction=0.0), seed=5
    )
    batch = scenes.sample(8, (96, 96))
    assert batch["img0"].shape == (8, 3, 96, 96) and batch["targets"].shape == (8, 1, 3, 96, 96)
    assert batch["flow"].shape == (8, 1, 4, 96, 96) and batch["flow_valid"].shape == (
        8,
        1,
        1,
        96,
        96,
    )
    valid = batch["flow_valid"].mean()
    assert 0.5 < valid < 1.0  # shape edges are marked unreliable
    error0, error1 = _warp_error(batch)
    assert error0 < 0.03 and error1 < 0.03  # occlusions remain, the flow itself is right
    timesteps = batch["timesteps"].flatten()
    assert ((timesteps > 0.04) & (timesteps < 0.96)).all() and timesteps.std() > 0.1


def test_motion_bounds_and_static_scenes(textures):
    fast = SceneGenerator(
        textures, SceneOptions(max_motion=40.0, static_fraction=0.0, max_deform=0.0), seed=1
    )
    still = SceneGenerator(textures, SceneOptions(static_fraction=1.0, static_motion=2.0), seed=1)
    fast_flow = fast.sample(8, (64, 64))["flow"]
    still_flow = still.sample(8, (64, 64))["flow"]
    # flow to img0 and to img1 together span the whole gap: at most ~max_motion plus the turn.
    span = (fast_flow[:, 0, :2] - fast_flow[:, 0, 2:]).norm(dim=1)
    assert span.amax() < 40.0 * 1.6 and span.amax() > 10.0
    assert (still_flow[:, 0, :2] - still_flow[:, 0, 2:]).norm(dim=1).amax() < 2.0 * 1.6


def test_same_seed_same_scenes(textures):
    first = SceneGenerator(textures, seed=9).sample(2, (64, 64))
    second = SceneGenerator(textures, seed=9).sample(2, (64, 64))
    other = SceneGenerator(textures, seed=10).sample(2, (64, 64))
    assert torch.equal(first["targets"], second["targets"]) and torch.equal(
        first["flow"], second["flow"]
    )
    assert not torch.equal(first["targets"], other["targets"])


def test_no_textures_is_one_error(tmp_path):
    with pytest.raises(EmavfiError, match="no texture images"):
        load_textures(tmp_path, torch.device("cpu"))


def test_deforming_layer_inverse_round_trips():
    # Rendering needs P_u^{-1} (fixed-point steps through the deformation field); the flow uses P_u.
    from emavfi.data.gpu_scenes import _LayerParams

    gen = torch.Generator().manual_seed(0)
    batch, size = 3, (48, 64)
    params = _LayerParams(
        velocity=torch.randn(batch, 1, 2, generator=gen) * 10,
        spin=torch.full((batch, 1), 0.2),
        zoom=torch.full((batch, 1), 0.1),
        centre=torch.tensor([[[32.0, 24.0]]]).expand(batch, 1, 2),
        deform_amp=torch.full((batch, 1), 8.0),
        deform=torch.randn(batch, 2, 4, 4, generator=gen).clamp(-1, 1),
        size=size,
    )
    ys, xs = torch.meshgrid(torch.arange(48.0), torch.arange(64.0), indexing="ij")
    pixels = torch.stack((xs, ys), -1)
    for u in (-0.5, 0.3):
        canonical = params.invert(pixels, torch.full((batch,), u))
        back = params.forward_front(canonical, torch.zeros(batch, 48, 64, dtype=torch.long), u)
        assert (back - pixels).abs().amax() < 0.05


# ----- motion options: min_motion (every layer travels that far) and a fixed timestep -----

RANDOM_TEXTURES = torch.randint(
    0, 256, (3, 3, 128, 128), generator=torch.Generator().manual_seed(0)
).to(torch.uint8)
RIGID = {"max_spin": 0.0, "max_zoom": 0.0, "max_deform": 0.0, "static_fraction": 0.0, "noise": 0.0}


def _travel(options: SceneOptions) -> torch.Tensor:
    """Displacement over the whole gap (frame 0 -> frame 1) of every pixel with a valid flow."""
    batch = SceneGenerator(RANDOM_TEXTURES, options, seed=3).sample(8, (64, 64))
    flow, valid = batch["flow"][:, 0], batch["flow_valid"][:, 0, 0] > 0
    return (flow[:, 2:] - flow[:, :2]).norm(dim=1)[valid]


def test_min_motion_moves_every_layer_at_least_that_far():
    # Rigid translation only: a pixel moves by its layer's velocity; the background at 0.6 of it.
    travel = _travel(SceneOptions(min_motion=16.0, max_motion=32.0, **RIGID))
    assert travel.min() >= 0.6 * 16.0 - 1e-3 and travel.max() <= 32.0 + 1e-3
    assert (travel >= 16.0 - 1e-3).any()
    slow = _travel(SceneOptions(min_motion=0.0, max_motion=32.0, **RIGID))
    assert slow.min() < 0.6 * 16.0


def test_fixed_timestep_changes_only_the_target():
    drawn = SceneGenerator(RANDOM_TEXTURES, SceneOptions(), seed=5).sample(2, (48, 48))
    fixed = SceneGenerator(RANDOM_TEXTURES, SceneOptions(timestep=0.3), seed=5).sample(2, (48, 48))
    assert torch.equal(fixed["timesteps"], torch.full((2, 1), 0.3))
    assert not torch.equal(drawn["timesteps"], fixed["timesteps"])
    # The same random draws otherwise: identical inputs (noise included), other targets.
    assert torch.equal(drawn["img0"], fixed["img0"]) and torch.equal(drawn["img1"], fixed["img1"])
    assert not torch.equal(drawn["targets"], fixed["targets"])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"min_motion": 70.0, "max_motion": 64.0}, "min_motion <= max_motion"),
        ({"min_motion": -1.0}, "min_motion <= max_motion"),
        ({"timestep": 1.0}, "timestep must be in"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str):
    with pytest.raises(EmavfiError, match=message):
        SceneOptions(**options)
