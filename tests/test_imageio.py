"""Image headers that claim any size: read before decoding, refused in one line when too large."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emavfi.errors import EmavfiError
from emavfi.imageio import MAX_FRAME_PIXELS, list_images, read_image
from tests.images import huge_png

sides = st.one_of(st.integers(1, 40), st.integers(8000, 2**31 - 1))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    width=sides,
    height=sides,
    color_type=st.sampled_from([0, 2, 4, 6]),
    depth=st.sampled_from([8, 16]),
)
def test_any_header_gives_an_image_or_one_line(tmp_path, width, height, color_type, depth):
    path = huge_png(tmp_path / "claim.png", width, height, color_type, depth)
    try:
        image = read_image(path)
    except EmavfiError as exc:
        assert "\n" not in str(exc) and "claim.png" in str(exc)
        assert width * height > 40 * 40 or "decode" in str(exc)
        return
    assert image.shape == (height, width, 3) and image.dtype == np.uint8
    assert width * height <= MAX_FRAME_PIXELS


@pytest.mark.parametrize("size", [(100000, 100000), (2**27 + 1, 1), (70000, 2)])
def test_too_large_is_refused_before_decoding(tmp_path, size):
    with pytest.raises(EmavfiError, match="pixels"):
        read_image(huge_png(tmp_path / "big.png", *size))


def test_image_folders_sort_naturally(tmp_path):
    for name in ("f10.png", "f2.png", "f1.png", "notes.txt", "f1b.jpg"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["f1.png", "f1b.jpg", "f2.png", "f10.png"]
