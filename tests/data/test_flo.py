from __future__ import annotations

import numpy as np
import pytest

from emavfi.data.flo import read_flo, unknown_flow_mask, write_flo
from emavfi.errors import EmavfiError


def test_round_trip(tmp_path):
    flow = np.random.default_rng(0).normal(0, 5, (7, 11, 2)).astype(np.float32)
    flow[0, 0] = 1e10
    path = tmp_path / "f.flo"
    write_flo(path, flow)
    assert path.stat().st_size == 12 + 7 * 11 * 2 * 4
    assert path.read_bytes()[:4] == b"PIEH"
    back = read_flo(path)
    assert back.shape == (7, 11, 2) and back.dtype == np.float32
    assert np.array_equal(back, flow)
    assert unknown_flow_mask(back).sum() == 1
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda b: b[:8], "only 8 bytes"),
        (lambda b: b"XXXX" + b[4:], "magic"),
        (lambda b: b[:-4], "truncated"),
        (lambda b: b + b"\0" * 8, "trailing"),
        (lambda b: b[:4] + np.array([-3, 7], "<i4").tobytes() + b[12:], "size -3x7"),
    ],
)
def test_rejects_corrupt_files(tmp_path, mangle, message):
    good = tmp_path / "good.flo"
    write_flo(good, np.zeros((7, 5, 2), np.float32))
    bad = tmp_path / "bad.flo"
    bad.write_bytes(mangle(good.read_bytes()))
    with pytest.raises(EmavfiError, match=message) as info:
        read_flo(bad)
    assert "bad.flo" in str(info.value)


def test_missing_and_bad_shape(tmp_path):
    with pytest.raises(EmavfiError, match="not found"):
        read_flo(tmp_path / "none.flo")
    with pytest.raises(EmavfiError, match="HxWx2"):
        write_flo(tmp_path / "x.flo", np.zeros((4, 4, 3)))
