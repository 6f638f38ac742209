"""Property tests of the frame-rate arithmetic (emavfi.video.timeline)."""

import logging
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emavfi.errors import EmavfiError
from emavfi.video.timeline import Timeline, plan, resolve_mode, select, to_fraction

# Timestamps in a 1/1000 s time base, strictly increasing, possibly irregular (VFR).
gaps = st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=40)
rates = st.sampled_from(
    [
        Fraction(24),
        Fraction(25),
        Fraction(30000, 1001),
        Fraction(48),
        Fraction(60),
        Fraction(7, 2),
        Fraction(120),
    ]
)


def _timestamps(start_ms: int, gap_list: list[int]) -> tuple[list[Fraction], Fraction]:
    times = [Fraction(start_ms, 1000)]
    for gap in gap_list[:-1]:
        times.append(times[-1] + Fraction(gap, 1000))
    return times, times[-1] + Fraction(gap_list[-1], 1000)


@settings(max_examples=150, deadline=None)
@given(start=st.integers(0, 5000), gap_list=gaps, fps=rates, interval=st.integers(1, 4))
def test_fps_mode_exact_count_times_and_pairs(start, gap_list, fps, interval):
    timestamps, end = _timestamps(start, gap_list)
    frames = plan(timestamps, end, fps=fps, frame_interval=interval)
    assert len(frames) == max(1, round((end - timestamps[0]) * fps))
    kept = select(len(timestamps), interval)
    for k, frame in enumerate(frames):
        assert frame.time == timestamps[0] + Fraction(k) / fps
        assert 0 <= frame.t < 1
        assert frame.index0 in kept and frame.index1 in kept
        if frame.index0 != frame.index1:
            ts0, ts1 = timestamps[frame.index0], timestamps[frame.index1]
            # the pair surrounds the time, consecutive among kept frames, t is exact
            assert ts0 <= frame.time < ts1
            assert kept.index(frame.index1) == kept.index(frame.index0) + 1
            assert frame.t == pytest.approx(float((frame.time - ts0) / (ts1 - ts0)), abs=1e-12)
        else:
            assert frame.t == 0


@settings(max_examples=150, deadline=None)
@given(start=st.integers(0, 5000), gap_list=gaps, factor=st.integers(0, 7))
def test_factor_mode_inserts_n_frames_per_pair(start, gap_list, factor):
    timestamps, end = _timestamps(start, gap_list)
    frames = plan(timestamps, end, factor=factor)
    assert len(frames) == len(timestamps) * (factor + 1)
    for i in range(len(timestamps) - 1):
        group = frames[i * (factor + 1) : (i + 1) * (factor + 1)]
        assert [f.t for f in group] == pytest.approx([j / (factor + 1) for j in range(factor + 1)])
        assert all((f.index0, f.index1) == (i, i + 1) for f in group)
    times = [f.time for f in frames]
    assert times == sorted(set(times)) and times[0] == timestamps[0] and times[-1] < end


@settings(max_examples=50, deadline=None)
@given(count=st.integers(2, 60), rate=rates, factor=st.integers(0, 5))
def test_factor_equals_fps_for_constant_rate(count, rate, factor):
    timestamps = [Fraction(i) / rate for i in range(count)]
    end = Fraction(count) / rate
    assert plan(timestamps, end, factor=factor) == plan(timestamps, end, fps=rate * (factor + 1))


@pytest.mark.parametrize("src, dst", [(24, 60), (30, 48), (60, 24), (25, 50)])
def test_common_ratios_keep_duration(src, dst):
    timestamps = [Fraction(i, src) for i in range(src * 2)]
    frames = plan(timestamps, Fraction(2), fps=Fraction(dst))
    assert len(frames) == 2 * dst


def test_30_to_48_uses_non_middle_timesteps():
    timestamps = [Fraction(i, 30) for i in range(30)]
    ts = sorted({round(f.t, 4) for f in plan(timestamps, Fraction(1), fps=Fraction(48))})
    assert ts == [0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875]


def test_cut_repeats_nearer_frame():
    timestamps = [Fraction(i, 10) for i in range(4)]
    frames = plan(timestamps, Fraction(4, 10), factor=3, cuts=frozenset({2}))
    across = [f for f in frames if timestamps[1] <= f.time < timestamps[2]]
    assert [(f.index0, f.index1, f.t) for f in across] == [
        (1, 1, 0),
        (1, 1, 0),
        (1, 1, 0),
        (2, 2, 0),
    ]


def test_fps_wins_over_factor_and_validation():
    assert resolve_mode(60, 3) == (Fraction(60), None)
    assert resolve_mode(None, None) == (None, 1)
    assert to_fraction(29.97) == Fraction(30000, 1001)
    with pytest.raises(
        EmavfiError, match="--fps must be a number above 0 and at most 1e[+]09, got 0"
    ):
        resolve_mode(0, None)
    with pytest.raises(EmavfiError, match="--factor must be between 0 and .*, got -1"):
        resolve_mode(None, -1)
    with pytest.raises(EmavfiError, match="the frame interval must be 1 or more, got 0"):
        select(5, 0)
    with pytest.raises(EmavfiError, match="no duration"):
        Timeline(Fraction(1), Fraction(1), fps=Fraction(30))


def test_fps_wins_with_a_warning_naming_both(caplog):
    with caplog.at_level(logging.WARNING, logger="emavfi.video.timeline"):
        assert resolve_mode(Fraction(48), 2) == (Fraction(48), None)
    assert "both a target fps (48) and a factor (2) were given: the fps wins" in caplog.text


def test_small_rates_and_factor_zero_are_valid():
    assert resolve_mode(0.5, None) == (Fraction(1, 2), None)  # one frame every 2 s
    assert resolve_mode(None, 0) == (None, 0)  # --factor 0 only re-times (with --frame-interval)


@pytest.mark.parametrize("base", [24, 30, 48, 60, 120, 240])
def test_ntsc_rates_snap_to_their_exact_fraction(base):
    ntsc = Fraction(base * 1000, 1001)
    assert to_fraction(round(float(ntsc), 3)) == ntsc  # 23.976, 29.97, 47.952, 59.94, ...
    assert to_fraction(str(round(float(ntsc), 2))) == ntsc
    near = ntsc + Fraction(1, 200) - Fraction(1, 10**6)  # just inside the 1/200 fps window
    assert to_fraction(near) == ntsc
    outside = ntsc + Fraction(1, 200)  # on the border: kept as given
    assert to_fraction(outside) == outside
    assert to_fraction(base) == base
