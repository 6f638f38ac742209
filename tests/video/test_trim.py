"""--start / --end: the span kept, its frames, its audio; ffmpeg's time syntax."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from emavfi.cli.main import main
from emavfi.errors import EmavfiError
from emavfi.video.timeline import parse_time

from .conftest import decode, make_video


def _run(*argv) -> int:
    return main(["interpolate", *map(str, argv), "--model", "blend", "--quiet"])


@pytest.fixture
def long_clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "long.mp4", count=48, audio=True)  # 4 s at 12 fps, a 440 Hz tone


@pytest.mark.parametrize("mode", [["--fps", "24"], ["--factor", "1"]])
def test_trim_keeps_the_span_its_frames_and_its_audio(long_clip, tmp_path, mode):
    whole, part = tmp_path / "whole.mp4", tmp_path / "part.mp4"
    assert _run(long_clip, "-o", whole, *mode) == 0
    assert _run(long_clip, "-o", part, *mode, "--start", "1", "--end", "00:02.5") == 0
    whole_times, whole_images, _ = decode(whole)
    times, images, facts = decode(part)
    assert len(images) == 36 and times[0] == 0  # 1.5 s at 24 fps, starting at 0
    assert np.allclose(np.diff(times), 1 / 24)
    first = whole_times.index(1.0)
    for made, reference in zip(images, whole_images[first : first + 36]):
        assert np.abs(made.astype(int) - reference).max() <= 16  # the same frames, re-encoded
    packets, _, seconds = facts["audio"]
    assert packets > 0 and abs(seconds - 1.5) <= 0.05  # cut to match, to an AAC packet
    assert abs(decode(whole)[2]["audio"][2] - 4.0) <= 0.05


def test_start_between_frames_and_end_past_the_video(long_clip, tmp_path):
    out = tmp_path / "tail.mp4"
    assert _run(long_clip, "-o", out, "--fps", "24", "--start", "3.3", "--end", "99") == 0
    times, images, _ = decode(out)
    assert len(images) == round(0.7 * 24) and times[0] == 0  # to the end of the video


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--start", "5"], "past the end"),
        (["--start", "2", "--end", "1"], "not after --start"),
        (["--end", "1:75"], "up to 59"),
        (["--start", "soon"], "not a time"),
        (["--start", "-1"], "not a time"),
    ],
)
def test_bad_spans_are_one_line_exit_2(long_clip, tmp_path, capsys, flags, message):
    out = tmp_path / "out.mp4"
    assert _run(long_clip, "-o", out, *flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90", 90),
        ("1.5", Fraction(3, 2)),
        ("1500ms", Fraction(3, 2)),
        ("250us", Fraction(1, 4000)),
        ("01:30", 90),
        ("1:02:03.25", 3723 + Fraction(1, 4)),
        (".5", Fraction(1, 2)),
    ],
)
def test_ffmpeg_time_syntax(text, seconds):
    assert parse_time(text) == seconds


def test_a_malformed_time_names_its_flag():
    with pytest.raises(EmavfiError, match="--end"):
        parse_time("1:2:3:4", "--end")
