from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from emavfi.data.synthetic import SyntheticConfig, SyntheticScenes, TextureBank
from emavfi.errors import EmavfiError
from tests.data.conftest import backward_warp, write_rgb

PLAIN = {"brightness_prob": 0.0, "blur_prob": 0.0, "noise_prob": 0.0}


@pytest.fixture(scope="module")
def textures(tmp_path_factory) -> Path:
    """Four smooth random colour textures (smooth, so bilinear resampling errors stay small)."""
    folder = tmp_path_factory.mktemp("textures")
    rng = np.random.default_rng(7)
    for index in range(4):
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        write_rgb(
            folder / f"t{index}.png", cv2.resize(small, (320, 240), interpolation=cv2.INTER_CUBIC)
        )
    return folder


def _homography(params: dict, anchor: tuple[float, float]) -> np.ndarray:
    """Written again from the parameters, independently of MotionPath.homography."""
    c, s = np.cos(params["angle"]), np.sin(params["angle"])
    ax, ay = anchor
    k = params["scale"]
    linear = np.array(
        [[k * c, -k * s, -k * (c * ax - s * ay)], [k * s, k * c, -k * (s * ax + c * ay)], [0, 0, 1]]
    )
    tilted = np.array([[1, 0, 0], [0, 1, 0], [params["tilt_x"], params["tilt_y"], 1]]) @ linear
    return np.array([[1, 0, params["x"]], [0, 1, params["y"]], [0, 0, 1]]) @ tilted


def _bilinear(texture: np.ndarray, xs: np.ndarray, ys: np.ndarray, reflect: bool) -> np.ndarray:
    height, width = texture.shape[:2]
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]

    def pick(x, y):
        if reflect:  # mirror without repeating the edge pixel (BORDER_REFLECT_101)
            period_x, period_y = 2 * (width - 1), 2 * (height - 1)
            x, y = (
                np.abs((x % period_x + period_x) % period_x),
                np.abs((y % period_y + period_y) % period_y),
            )
            x, y = np.where(x >= width, period_x - x, x), np.where(y >= height, period_y - y, y)
            return texture[y, x].astype(np.float64)
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        values = texture[np.clip(y, 0, height - 1), np.clip(x, 0, width - 1)].astype(np.float64)
        return values * inside[..., None]

    top = pick(x0, y0) * (1 - fx) + pick(x0 + 1, y0) * fx
    bottom = pick(x0, y0 + 1) * (1 - fx) + pick(x0 + 1, y0 + 1) * fx
    return (top * (1 - fy) + bottom * fy) / 255.0


def _independent_render(scene, t: float) -> np.ndarray:
    height, width = scene.size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    image = None
    for layer in scene.layers:
        inverse = np.linalg.inv(_homography(layer.motion.params(t), layer.motion.anchor))
        points = inverse @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
        tex_x = (points[0] / points[2]).reshape(height, width)
        tex_y = (points[1] / points[2]).reshape(height, width)
        colour = _bilinear(layer.texture, tex_x, tex_y, reflect=image is None)
        if image is None:
            image = colour
        else:
            alpha = colour[..., 3:]
            image = image * (1 - alpha) + colour[..., :3] * alpha
    return image


def test_frame_at_half_matches_independent_rendering(textures):
    config = SyntheticConfig(size=(48, 64), timesteps=(0.5,), **PLAIN)
    scenes = SyntheticScenes(textures, config, seed=3)
    for index in range(3):
        sample = scenes.sample(index)
        expected = _independent_render(sample.scene, 0.5)
        error = np.abs(sample.targets[0] - expected)
        assert error.mean() < 2e-3 and np.percentile(error, 99) < 1.5e-2
        assert sample.timesteps.tolist() == [0.5]
        assert np.abs(expected - _independent_render(sample.scene, 0.0)).mean() > 0.01  # it moves


def test_ground_truth_flow_warps_inputs_onto_target(textures):
    config = SyntheticConfig(size=(64, 80), **PLAIN)
    scenes = SyntheticScenes(textures, config, seed=11)
    for index in range(4):
        sample = scenes.sample(index, targets=2, with_visibility=True)
        assert sample.flow.shape == (2, 64, 80, 4) and sample.flow_valid.shape == (2, 64, 80)
        for k in range(2):
            target = sample.targets[k]
            for end, (channels, frame) in enumerate(
                ((slice(0, 2), sample.img0), (slice(2, 4), sample.img1))
            ):
                warped = backward_warp(frame, sample.flow[k, ..., channels])
                usable = (
                    (sample.flow_valid[k] > 0)
                    & sample.visible[k, ..., end]
                    & ~np.isnan(warped[..., 0])
                )
                assert usable.mean() > 0.3
                # erode: bilinear sampling near an occluding edge mixes in the occluder
                usable = cv2.erode(usable.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
                warped_error = np.abs(warped - target)[usable].mean()
                unwarped_error = np.abs(frame - target)[usable].mean()
                assert warped_error < 0.01, (index, k, end, warped_error)
                assert warped_error < unwarped_error / 3


def test_seeded_stream_is_reproducible_and_varied(textures):
    config = SyntheticConfig(size=(32, 32))
    first = SyntheticScenes(textures, config, seed=5).sample(9)
    again = SyntheticScenes(textures, config, seed=5).sample(9)
    other = SyntheticScenes(textures, config, seed=5).sample(10)
    assert np.array_equal(first.img0, again.img0) and np.array_equal(first.flow, again.flow)
    assert not np.array_equal(first.img0, other.img0)
    assert first.img0.dtype == np.float32 and 0 <= first.img0.min() and first.img0.max() <= 1
    assert 1 / 16 <= first.timesteps[0] <= 15 / 16


def test_motion_range_includes_large_motions(textures):
    config = SyntheticConfig(size=(64, 64), max_motion=0.25, **PLAIN)
    scenes = SyntheticScenes(textures, config, seed=1)
    largest = [np.abs(scenes.sample(i).flow).max() for i in range(12)]
    assert max(largest) > 0.12 * 64  # some layer moves more than 1/8 of the crop to one end
    assert max(largest) < 64


def test_small_max_motion_gives_nearly_static_scenes(textures):
    # rotation, zoom and tilt shrink with max_motion too, not only the translations
    config = SyntheticConfig(size=(64, 64), max_motion=0.01, **PLAIN)
    scenes = SyntheticScenes(textures, config, seed=1)
    largest = max(np.abs(scenes.sample(i).flow).max() for i in range(12))
    assert largest < 0.02 * 64


def test_blurred_samples_have_no_valid_flow(textures):
    config = SyntheticConfig(size=(32, 32), blur_prob=1.0, noise_prob=1.0, brightness_prob=1.0)
    sample = SyntheticScenes(textures, config).sample(0)
    assert sample.flow_valid.max() == 0
    assert sample.scene.blur_exposure > 0 and sample.scene.noise_sigma > 0


def test_texture_folder_errors(tmp_path):
    with pytest.raises(EmavfiError, match="missing"):
        TextureBank(tmp_path / "missing")
    with pytest.raises(EmavfiError, match="no texture images"):
        TextureBank(tmp_path)
