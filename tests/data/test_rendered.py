"""The rendered large-motion source: fixed windows, exact and repeatable frames, no files."""

from __future__ import annotations

import numpy as np
import pytest

from emavfi.data.sources import load_frame, open_source, rendered
from emavfi.errors import EmavfiError


def _frames(window) -> list[np.ndarray]:
    return [
        load_frame(window.inputs[0]),
        load_frame(window.targets[0][1]),
        load_frame(window.inputs[1]),
    ]


def test_windows_and_frames():
    windows = open_source("rendered", None, count=3, size=64, timestep=0.25)
    assert [w.name for w in windows] == ["scene000", "scene001", "scene002"]
    for window in windows:
        assert [t for t, _ in window.targets] == [0.25]
        frames = _frames(window)
        assert all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in frames)
        assert not np.array_equal(frames[0], frames[2])  # things move


def test_frames_are_the_same_after_the_caches_are_emptied():
    window = open_source("rendered", None, count=2, size=64)[1]
    first = _frames(window)
    rendered._render.cache_clear()
    rendered.procedural_textures.cache_clear()
    assert all(np.array_equal(a, b) for a, b in zip(first, _frames(window)))
    other_seed = open_source("rendered", None, count=2, size=64, seed=12)[1]
    assert not np.array_equal(first[0], _frames(other_seed)[0])


def test_the_large_motion_suite_keeps_its_fingerprint():
    """Scene 0 of the ``large-motion-synthetic`` preset and its textures. If this fails, the
    generator or the textures changed: the suite is another set now and the README's figures
    must be re-measured."""
    from emavfi.evaluate.suites import PRESETS

    preset = PRESETS["large-motion-synthetic"]
    window = open_source(preset.kind, None, **preset.options)[0]
    means = [f.reshape(-1, 3).mean(axis=0) for f in _frames(window)]
    expected = [
        [128.215, 123.898, 116.474],
        [129.518, 124.049, 116.328],
        [130.448, 124.185, 117.673],
    ]
    np.testing.assert_allclose(means, expected, atol=0.05)
    textures = rendered.procedural_textures(rendered.TEXTURE_COUNT, preset.options["seed"])
    texture_means = [
        [143.51, 114.93, 147.79, 127.34, 151.05, 136.91],
        [123.59, 104.49, 142.93, 138.01, 104.29, 152.2],
    ]
    np.testing.assert_allclose(
        textures.float().mean(dim=(1, 2, 3)).view(2, 6).numpy(), texture_means, atol=0.05
    )


@pytest.mark.parametrize(
    "path, options, message",
    [
        ("/tmp", {}, "reads no files"),
        (None, {"count": 0}, "count must be at least 1"),
        (None, {"size": 16}, "size must be at least 32"),
        (None, {"min_motion": 80.0}, "min_motion <= max_motion"),
        (None, {"gap": 2}, "unknown option"),
    ],
)
def test_bad_requests_are_one_line_errors(path, options: dict, message: str):
    with pytest.raises(EmavfiError, match=message) as info:
        open_source("rendered", path, **options)
    assert "\n" not in str(info.value)
