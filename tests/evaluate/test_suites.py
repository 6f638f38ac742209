"""Suites as data: parsing KIND:PATH and presets, and every source kind loading through them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emavfi.data.sources import load_frame
from emavfi.errors import EmavfiError
from emavfi.evaluate.suites import KINDS, Suite, load_windows, parse_suite, unique_names
from tests.evaluate.conftest import moving_frame, write_rgb
from tests.shared_paths import SHARED_DATA


def test_kind_and_path_are_parsed(triplet_root: Path):
    suite = parse_suite(f"triplet:{triplet_root}", limit=2)
    assert (suite.kind, suite.path, suite.name, suite.limit) == (
        "triplet",
        triplet_root,
        "triplets",
        2,
    )


def test_preset_needs_a_data_root(tmp_path: Path, triplet_root: Path):
    with pytest.raises(EmavfiError, match="--data-root"):
        parse_suite("ucf101")
    (tmp_path / "ucf101").symlink_to(triplet_root)
    suite = parse_suite("ucf101", data_root=tmp_path)
    assert (suite.kind, suite.name, suite.path) == ("triplet", "ucf101", tmp_path / "ucf101")


@pytest.mark.parametrize(
    "text, message",
    [
        ("nosuch:/tmp", "unknown dataset kind 'nosuch'"),
        ("ucf", "neither KIND:PATH"),
        ("triplet:/does/not/exist", "triplet dataset not found: /does/not/exist"),
    ],
)
def test_bad_suites_are_one_line_errors(text: str, message: str):
    with pytest.raises(EmavfiError, match=message) as info:
        parse_suite(text)
    assert "\n" not in str(info.value)


def test_limit_must_be_positive(triplet_root: Path):
    with pytest.raises(EmavfiError, match="--limit"):
        parse_suite(f"triplet:{triplet_root}", limit=0)


def test_repeated_names_get_suffixes(triplet_root: Path):
    suite = parse_suite(f"triplet:{triplet_root}")
    assert [s.name for s in unique_names([suite, suite])] == ["triplets", "triplets-2"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_loads(kind: str, request):
    fixture = {
        "middlebury": "middlebury_root",
        "triplet": "triplet_root",
        "vimeo": "vimeo_root",
        "scenes": "scenes_root",
        "video": "video_file",
    }[kind]
    path = request.getfixturevalue(fixture)
    windows = load_windows(parse_suite(f"{kind}:{path}"))
    assert windows
    window = windows[0]
    frame0, frame1 = (load_frame(ref) for ref in window.inputs)
    assert frame0.shape == frame1.shape == (32, 40, 3) and frame0.dtype == np.uint8
    for t, ref in window.targets:
        assert 0 < t < 1 and load_frame(ref).shape == frame0.shape


def test_limit_caps_the_windows(triplet_root: Path):
    assert len(load_windows(Suite("t", "triplet", triplet_root, limit=2))) == 2
    assert len(load_windows(Suite("t", "triplet", triplet_root))) == 3


def test_large_motion_synthetic_needs_no_data_root():
    suite = parse_suite("large-motion-synthetic", limit=2)
    assert (suite.kind, suite.path, suite.options["min_motion"], suite.options["max_motion"]) == (
        "rendered",
        None,
        16.0,
        64.0,
    )
    assert suite.as_dict()["path"] is None
    windows = load_windows(suite)
    assert len(windows) == 2 and [t for t, _ in windows[0].targets] == [0.5]
    assert load_frame(windows[0].inputs[0]).shape == (256, 256, 3)
    assert len(load_windows(parse_suite("large-motion-synthetic"))) == 48


def test_middlebury_gap4_reads_the_eight_frame_sequences(tmp_path: Path):
    data = tmp_path / "middlebury" / "other-data"
    for number in range(7, 15):
        write_rgb(data / "Beanbags" / f"frame{number:02d}.png", moving_frame(2 + 3 * (number - 7)))
    for number in (10, 11):  # a two-frame sequence gives no window
        write_rgb(data / "Venus" / f"frame{number}.png", moving_frame(number))
    windows = load_windows(parse_suite("middlebury-gap4", data_root=tmp_path))
    assert [w.inputs for w in windows] == [
        (
            data / "Beanbags" / f"frame{first:02d}.png",
            data / "Beanbags" / f"frame{first + 4:02d}.png",
        )
        for first in (7, 8, 9, 10)
    ]
    assert windows[0].targets == tuple(
        (k / 4, data / "Beanbags" / f"frame{7 + k:02d}.png") for k in (1, 2, 3)
    )
    for number in range(7, 15):
        if number not in (10, 11):
            (data / "Beanbags" / f"frame{number:02d}.png").unlink()
    with pytest.raises(EmavfiError, match="at least 5 frames") as info:
        load_windows(parse_suite("middlebury-gap4", data_root=tmp_path))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "preset, windows, targets",
    [("foreman-gap4", 24, (1 / 4, 3 / 4, 3)), ("zhling-gap4", 8, (1 / 4, 3 / 4, 3))],
)
def test_real_large_motion_presets_on_the_shared_streams(preset: str, windows: int, targets):
    found = load_windows(parse_suite(preset, data_root=SHARED_DATA))
    first, last, count = targets
    assert len(found) == windows
    assert all(len(w.targets) == count for w in found)
    assert (found[0].targets[0][0], found[0].targets[-1][0]) == pytest.approx((first, last))
    gap = round(1 / first)
    assert found[0].inputs[1].index - found[0].inputs[0].index == gap
