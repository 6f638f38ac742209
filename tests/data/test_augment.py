from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from emavfi.config import from_dict
from emavfi.data.augment import (
    NO_AUGMENTATION,
    AugmentConfig,
    ColorJitter,
    augment_sample,
    fit_to_crop,
    random_crop,
)
from emavfi.data.synthetic import SyntheticConfig, SyntheticScenes
from emavfi.errors import EmavfiError
from tests.data.conftest import backward_warp
from tests.data.test_synthetic import PLAIN, textures  # noqa: F401  (fixture)


def _sample_dict(sample) -> dict:
    """A synthetic sample as tensors; flow_valid keeps only pixels seen in both input frames."""
    usable = sample.flow_valid * sample.visible[..., 0] * sample.visible[..., 1]
    return {
        "img0": torch.from_numpy(sample.img0).permute(2, 0, 1),
        "img1": torch.from_numpy(sample.img1).permute(2, 0, 1),
        "targets": torch.from_numpy(sample.targets).permute(0, 3, 1, 2),
        "timesteps": torch.from_numpy(sample.timesteps),
        "flow": torch.from_numpy(sample.flow).permute(0, 3, 1, 2),
        "flow_valid": torch.from_numpy(usable.astype(np.float32))[:, None],
    }


def _warp_error(sample: dict, end: int) -> float:
    image = (sample["img0"] if end == 0 else sample["img1"]).permute(1, 2, 0).numpy()
    flow = sample["flow"][0, 2 * end : 2 * end + 2].permute(1, 2, 0).numpy()
    warped = backward_warp(image, flow)
    target = sample["targets"][0].permute(1, 2, 0).numpy()
    usable = (sample["flow_valid"][0, 0].numpy() > 0) & ~np.isnan(warped[..., 0])
    return float(np.abs(warped - target)[usable].mean())


@pytest.mark.parametrize("seed", range(8))
def test_geometric_augmentation_keeps_frames_and_flows_aligned(textures, seed):  # noqa: F811
    scenes = SyntheticScenes(textures, SyntheticConfig(size=(48, 48), **PLAIN), seed=seed)
    original = _sample_dict(scenes.sample(0, with_visibility=True))
    config = dataclasses.replace(
        NO_AUGMENTATION,
        random_rotation=True,
        horizontal_flip=True,
        vertical_flip=True,
        temporal_reversal=True,
    )
    augmented = augment_sample(original, config, np.random.default_rng(seed))
    for end in (0, 1):
        assert _warp_error(augmented, end) < 0.015
    total = augmented["img0"].sum()
    reversed_ = abs(total - original["img1"].sum()) < abs(total - original["img0"].sum())
    expected_t = 1 - original["timesteps"] if reversed_ else original["timesteps"]
    assert torch.allclose(augmented["timesteps"], expected_t)


def test_each_geometric_transform_is_applied_somewhere(textures):  # noqa: F811
    original = _sample_dict(
        SyntheticScenes(textures, SyntheticConfig(size=(32, 32), **PLAIN)).sample(
            0, with_visibility=True
        )
    )
    config = dataclasses.replace(NO_AUGMENTATION, horizontal_flip=True)
    outcomes = {
        torch.equal(
            augment_sample(original, config, np.random.default_rng(s))["img0"],
            original["img0"].flip(-1),
        )
        for s in range(10)
    }
    assert outcomes == {True, False}
    assert torch.equal(
        augment_sample(original, NO_AUGMENTATION, np.random.default_rng(0))["img0"],
        original["img0"],
    )


def test_non_square_rotation_keeps_shape(textures):  # noqa: F811
    sample = _sample_dict(
        SyntheticScenes(textures, SyntheticConfig(size=(24, 40), **PLAIN)).sample(
            0, with_visibility=True
        )
    )
    config = dataclasses.replace(NO_AUGMENTATION, random_rotation=True)
    for seed in range(6):
        out = augment_sample(sample, config, np.random.default_rng(seed))
        assert out["img0"].shape == (3, 24, 40) and out["flow"].shape == (1, 4, 24, 40)
        assert _warp_error(out, 0) < 0.015


def test_color_jitter_and_grayscale_same_for_every_frame():
    frame = torch.rand(3, 16, 16)
    sample = {
        "img0": frame,
        "img1": frame.clone(),
        "targets": frame[None].repeat(2, 1, 1, 1),
        "timesteps": torch.tensor([0.3, 0.6]),
        "flow": torch.zeros(2, 4, 16, 16),
        "flow_valid": torch.zeros(2, 1, 16, 16),
    }
    config = dataclasses.replace(
        NO_AUGMENTATION, color_jitter=ColorJitter(0.4, 0.4, 0.4, 0.2), random_grayscale=1.0
    )
    out = augment_sample(sample, config, np.random.default_rng(0))
    assert not torch.allclose(out["img0"], frame)
    assert torch.allclose(out["img0"], out["img1"]) and torch.allclose(
        out["targets"][1], out["img0"]
    )
    assert torch.allclose(out["img0"][0], out["img0"][1])  # grey
    assert out["img0"].min() >= 0 and out["img0"].max() <= 1


def test_crop_and_fit():
    rng = np.random.default_rng(0)
    base = np.arange(20 * 30).reshape(20, 30)
    a, b = random_crop([base, base + 1], (8, 10), rng)
    assert a.shape == (8, 10) and np.array_equal(b, a + 1)
    small = [np.zeros((10, 20, 3), np.uint8)]
    assert fit_to_crop(small, (16, 16))[0].shape == (16, 32, 3)
    with pytest.raises(EmavfiError, match="smaller than crop_size"):
        random_crop(small, (16, 16), rng)
    with pytest.raises(EmavfiError, match="random_grayscale"):
        AugmentConfig(random_grayscale=2.0)


def test_rotate_hue_shifts_hsv_hue_and_keeps_grey():
    import colorsys

    from emavfi.data.augment import rotate_hue

    colours = [(0.9, 0.1, 0.1), (0.1, 0.8, 0.2), (0.2, 0.3, 0.9), (0.8, 0.7, 0.1), (0.6, 0.3, 0.7)]
    frames = torch.tensor(colours).T[None, :, :, None]  # (1, 3, 5, 1)
    for hue in (0.1, -0.1):
        out = rotate_hue(frames, hue)[0, :, :, 0].T
        for before, after in zip(colours, out.tolist()):
            change = (
                colorsys.rgb_to_hsv(*after)[0] - colorsys.rgb_to_hsv(*before)[0] + 0.5
            ) % 1 - 0.5
            assert 0.5 * abs(hue) < change * np.sign(hue) < 1.5 * abs(hue)
    assert torch.allclose(rotate_hue(frames, 0.0), frames, atol=1e-5)
    grey = torch.full((1, 3, 4, 4), 0.5)
    assert torch.allclose(rotate_hue(grey, 0.3), grey, atol=1e-5)


def test_config_from_the_original_keys():
    config = from_dict(
        AugmentConfig,
        {
            "color_jitter": {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.1},
            "crop_size": [256, 256],
            "random_rotation": True,
            "horizontal_flip": True,
            "random_grayscale": 0.2,
        },
    )
    assert config.crop_size == (256, 256) and config.color_jitter == ColorJitter(0.2, 0.2, 0.2, 0.1)
    assert from_dict(AugmentConfig, {"color_jitter": None}).color_jitter is None
    with pytest.raises(EmavfiError, match="horizontal_flp"):
        from_dict(AugmentConfig, {"horizontal_flp": True})
    with pytest.raises(EmavfiError, match="hues"):
        from_dict(AugmentConfig, {"color_jitter": {"hues": 0.1}})
    with pytest.raises(EmavfiError, match="'color_jitter.hue': 0.6 is impossible"):
        from_dict(AugmentConfig, {"color_jitter": {"hue": 0.6}})
