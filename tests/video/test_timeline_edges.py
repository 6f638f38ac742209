"""Timeline edge cases: duplicate timestamps, kept frames, the default blend, exact messages."""

import logging
from fractions import Fraction

import pytest

from emavfi.errors import EmavfiError
from emavfi.video.timeline import (
    MAX_FACTOR,
    MAX_FPS,
    OutputFrame,
    Timeline,
    frames_between,
    parse_time,
    resolve_mode,
    select,
    to_fraction,
)


def test_frame_interval_keeps_every_kth_frame():
    assert select(7, 3) == [0, 3, 6]
    assert select(6, 2) == [0, 2, 4]
    assert select(3, 1) == [0, 1, 2]


def test_two_frames_at_the_same_time_add_no_output_in_factor_mode():
    """A duplicated timestamp (seen in variable-rate files) spans nothing to fill."""
    timeline = Timeline(Fraction(0), Fraction(10), factor=2)
    assert list(timeline.times_between(Fraction(3), Fraction(3))) == []
    assert list(timeline.times_between(Fraction(3), Fraction(2))) == []
    assert list(timeline.times_between(Fraction(3), Fraction(6))) == [3, 4, 5]


def test_frames_between_blends_unless_told_of_a_cut():
    times = [Fraction(4), Fraction(5)]
    blended = list(frames_between(times, 0, Fraction(4), 1, Fraction(8)))
    assert blended == [OutputFrame(Fraction(4), 0, 1, 0.0), OutputFrame(Fraction(5), 0, 1, 0.25)]
    held = list(frames_between(times, 0, Fraction(4), 1, Fraction(8), cut=True))
    assert held == [OutputFrame(Fraction(4), 0, 0, 0.0), OutputFrame(Fraction(5), 0, 0, 0.0)]


def test_messages_are_exactly_one_plain_line(caplog):
    with pytest.raises(ValueError, match=r"^give exactly one of fps and factor$"):
        Timeline(Fraction(0), Fraction(1), fps=Fraction(30), factor=1)
    with pytest.raises(
        EmavfiError,
        match=r"^the video has no duration \(its last timestamp is not after its first\)$",
    ):
        Timeline(Fraction(1), Fraction(1), factor=1)
    with caplog.at_level(logging.WARNING, logger="emavfi.video.timeline"):
        resolve_mode(Fraction(48), 2)
    assert caplog.messages == ["both a target fps (48) and a factor (2) were given: the fps wins"]


@pytest.mark.parametrize(
    "text, seconds",
    [
        (" 90 ", 90),
        ("2s", 2),
        ("7.", 7),
        (".5", Fraction(1, 2)),
        ("1.25", Fraction(5, 4)),
        ("1500ms", Fraction(3, 2)),
        ("250us", Fraction(1, 4000)),
        ("01:30", 90),
        ("90:00", 5400),  # minutes past 59 are fine when no hours are given
        ("1:02:03.25", 3723 + Fraction(1, 4)),
        ("2:59:59.5", 3 * 3600 - Fraction(1, 2)),
    ],
)
def test_parse_time_reads_ffmpeg_times_exactly(text, seconds):
    parsed = parse_time(text)
    assert parsed == seconds and isinstance(parsed, Fraction)


@pytest.mark.parametrize(
    "text, flag, message",
    [
        ("1:60:00", "--end", "--end '1:60:00': minutes and seconds go up to 59"),
        ("1:00:60", "--end", "--end '1:00:60': minutes and seconds go up to 59"),
        ("00:60", "--start", "--start '00:60': minutes and seconds go up to 59"),
        ("-1", "--start", "--start '-1' is not a time (e.g. 90, 1.5, 1500ms, 01:30, 1:02:03.25)"),
        ("1:2:3:4", None, "time '1:2:3:4' is not a time (e.g. 90, 1.5, 1500ms, 01:30, 1:02:03.25)"),
        ("5m", None, "time '5m' is not a time (e.g. 90, 1.5, 1500ms, 01:30, 1:02:03.25)"),
    ],
)
def test_parse_time_refuses_in_one_line_naming_the_flag(text, flag, message):
    with pytest.raises(EmavfiError) as info:
        parse_time(text) if flag is None else parse_time(text, flag)
    assert str(info.value) == message


def test_a_trimmed_span_keeps_its_start_and_not_its_end_in_factor_mode():
    """``--start 2 --end 10``: input pairs straddling either bound add only the times inside."""
    timeline = Timeline(Fraction(2), Fraction(10), factor=1)
    assert list(timeline.times_between(Fraction(0), Fraction(4))) == [2]
    assert list(timeline.times_between(Fraction(8), Fraction(12))) == [8]
    assert list(timeline.times_between(Fraction(10), Fraction(12))) == []


def test_fps_and_factor_may_reach_their_maximum_and_no_further():
    assert resolve_mode(MAX_FPS, None) == (MAX_FPS, None)
    assert resolve_mode(None, MAX_FACTOR) == (None, MAX_FACTOR)
    with pytest.raises(EmavfiError, match=r"^--fps must be a number above 0 and at most 1e\+09, "):
        resolve_mode(MAX_FPS + 1, None)
    with pytest.raises(EmavfiError, match=r"^--factor must be between 0 and 1000000, got 1000001$"):
        resolve_mode(None, MAX_FACTOR + 1)


def test_an_fps_from_a_float_division_is_the_exact_fraction():
    assert to_fraction(100 / 3) == Fraction(100, 3)  # 33.333333333333336 as a float
    assert to_fraction(1e-7) == Fraction(1, 10**7)  # below what a millionth can show: kept
