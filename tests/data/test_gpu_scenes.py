"""SceneGenerator's motion options: ``min_motion`` (every layer travels that far) and ``timestep``."""

from __future__ import annotations

import pytest
import torch

from emavfi.data.gpu_scenes import SceneGenerator, SceneOptions
from emavfi.errors import EmavfiError

TEXTURES = torch.randint(0, 256, (3, 3, 128, 128), generator=torch.Generator().manual_seed(0)).to(
    torch.uint8
)
RIGID = {"max_spin": 0.0, "max_zoom": 0.0, "max_deform": 0.0, "static_fraction": 0.0, "noise": 0.0}


def _travel(options: SceneOptions) -> torch.Tensor:
    """Displacement over the whole gap (frame 0 -> frame 1) of every pixel with a valid flow."""
    batch = SceneGenerator(TEXTURES, options, seed=3).sample(8, (64, 64))
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
    drawn = SceneGenerator(TEXTURES, SceneOptions(), seed=5).sample(2, (48, 48))
    fixed = SceneGenerator(TEXTURES, SceneOptions(timestep=0.3), seed=5).sample(2, (48, 48))
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
