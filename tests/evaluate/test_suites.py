"""Suites as data: parsing KIND:PATH and presets, and every source kind loading through them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emavfi.errors import EmavfiError
from emavfi.evaluate.suites import KINDS, Suite, load_windows, parse_suite, unique_names


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
    from emavfi.data.sources import load_frame

    window = windows[0]
    frame0, frame1 = (load_frame(ref) for ref in window.inputs)
    assert frame0.shape == frame1.shape == (32, 40, 3) and frame0.dtype == np.uint8
    for t, ref in window.targets:
        assert 0 < t < 1 and load_frame(ref).shape == frame0.shape


def test_limit_caps_the_windows(triplet_root: Path):
    assert len(load_windows(Suite("t", "triplet", triplet_root, limit=2))) == 2
    assert len(load_windows(Suite("t", "triplet", triplet_root))) == 3
