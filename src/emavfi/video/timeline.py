"""Frame-rate arithmetic: which output frames exist, when, and from which input pair at which t.

Pure functions over exact ``Fraction`` times (seconds), so that 24 -> 60, 30 -> 48, 60 -> 24 and
30000/1001 rates come out exact, and variable-frame-rate input is just a list of timestamps.

Rules (documented in docs/video.md and ``emavfi interpolate --help``):

* The input covers ``[start, end)``: ``start`` is the first frame's timestamp and ``end`` the last
  frame's timestamp plus its duration. ``--frame-interval k`` keeps input frames 0, k, 2k, ...
  but the covered span (and so the output duration) stays the same.
* ``fps=F``: output frame ``k`` is shown at ``start + k / F`` for ``k = 0 .. N - 1`` with
  ``N = round((end - start) * F)`` (halves round to even, Python's rule), so the output lasts
  exactly as long as the input, to the nearest output frame.
* ``factor=n``: every interval between consecutive kept frames is cut into ``n + 1`` equal steps
  (the kept frame itself and ``n`` new frames), the last frame's interval ``[last, end)`` too, so
  that the output has ``(n + 1) x`` the kept frames and the same duration (for constant-rate
  input this equals ``fps = (n + 1) x input fps``).
* If both are given, ``fps`` wins (``resolve_mode`` logs that the factor is ignored).
* An output time ``tau`` in ``[ts_a, ts_b)`` between two anchor frames is synthesised at
  ``t = (tau - ts_a) / (ts_b - ts_a)``; ``t == 0`` is a plain copy of frame ``a``; after the last
  anchor the last frame is held.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

from emavfi.errors import EmavfiError

log = logging.getLogger(__name__)

MAX_FPS = 10**9  # output clocks tick in nanoseconds at the finest
MAX_FACTOR = 10**6
# ffmpeg's time syntax: [-][HH:]MM:SS[.m...] or [-]S+[.m...][s|ms|us]
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")
_SECONDS = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(s|ms|us)?$")


@dataclass(frozen=True)
class OutputFrame:
    """One output frame: shown at ``time`` (s), synthesised between inputs ``index0``/``index1``
    at ``t`` in [0, 1) (``t == 0`` means a copy of ``index0``; ``index0 == index1`` a hold)."""

    time: Fraction
    index0: int
    index1: int
    t: float


def resolve_mode(
    fps: float | Fraction | None, factor: int | None
) -> tuple[Fraction | None, int | None]:
    """Validate ``--fps`` / ``--factor``; fps wins when both are given. Default: factor 1 (2x)."""
    if fps is not None and factor is not None:
        log.warning(
            "both a target fps (%s) and a factor (%d) were given: the fps wins", fps, factor
        )
    if fps is not None:
        if not (isinstance(fps, Fraction) or math.isfinite(fps)) or not 0 < fps <= MAX_FPS:
            raise EmavfiError(f"--fps must be a number above 0 and at most {MAX_FPS:g}, got {fps}")
        return to_fraction(fps), None
    if factor is None:
        factor = 1
    if not 0 <= factor <= MAX_FACTOR:
        raise EmavfiError(f"--factor must be between 0 and {MAX_FACTOR}, got {factor}")
    return None, int(factor)


def to_fraction(value: float | str | Fraction) -> Fraction:
    """An fps as an exact fraction: 29.97 -> 30000/1001, 23.976 -> 24000/1001, 60 -> 60."""
    frac = Fraction(str(value)) if not isinstance(value, Fraction) else value
    for base in (24, 30, 48, 60, 120, 240):
        ntsc = Fraction(base * 1000, 1001)
        if frac != ntsc and abs(frac - ntsc) < Fraction(1, 200):
            return ntsc
    return frac.limit_denominator(1_000_000) or frac


def parse_time(text: str, flag: str = "time") -> Fraction:
    """An ffmpeg-style time as exact seconds: ``90``, ``1.5``, ``1500ms``, ``01:30``,
    ``1:02:03.25``. Negative or malformed times raise EmavfiError naming ``flag``."""
    text = text.strip()
    clock = _CLOCK.match(text)
    if clock:
        hours, minutes, seconds = clock.groups()
        if int(minutes) >= 60 and hours is not None or float(seconds) >= 60:
            raise EmavfiError(f"{flag} {text!r}: minutes and seconds go up to 59")
        return Fraction(int(hours or 0) * 3600 + int(minutes) * 60) + Fraction(seconds)
    plain = _SECONDS.match(text)
    if plain:
        scale = {"ms": Fraction(1, 1000), "us": Fraction(1, 10**6)}.get(plain.group(2), 1)
        return Fraction(plain.group(1)) * scale
    raise EmavfiError(f"{flag} {text!r} is not a time (e.g. 90, 1.5, 1500ms, 01:30, 1:02:03.25)")


def output_count(start: Fraction, end: Fraction, fps: Fraction) -> int:
    """Number of output frames for the span ``[start, end)`` at ``fps``: round(duration x fps)."""
    return max(1, round((end - start) * fps))


class Timeline:
    """Output times of a video, produced interval by interval as the input streams in.

    Args:
        start, end: the span covered by the input (see the module docstring).
        fps: target rate (exclusive with ``factor``; see ``resolve_mode``).
        factor: frames inserted between consecutive kept input frames.
    """

    def __init__(
        self,
        start: Fraction,
        end: Fraction,
        *,
        fps: Fraction | None = None,
        factor: int | None = None,
    ):
        if (fps is None) == (factor is None):
            raise ValueError("give exactly one of fps and factor")
        if not end > start:
            raise EmavfiError(
                "the video has no duration (its last timestamp is not after its first)"
            )
        self.start, self.end, self.fps, self.factor = Fraction(start), Fraction(end), fps, factor
        self.total = output_count(self.start, self.end, fps) if fps is not None else None

    def times_between(self, ts0: Fraction, ts1: Fraction) -> Iterator[Fraction]:
        """Output times in ``[ts0, ts1)`` for consecutive kept input frames (``ts1 = end`` for the
        last one). Calls over consecutive intervals produce every output time exactly once.
        Generated one by one: an interval may hold millions (``--fps 1e9``)."""
        if self.fps is not None:
            first = math.ceil((ts0 - self.start) * self.fps)
            stop = min(math.ceil((ts1 - self.start) * self.fps), self.total)
            return (self.start + Fraction(k) / self.fps for k in range(max(first, 0), stop))
        if ts1 <= ts0:
            return iter(())
        steps = self.factor + 1
        times = (ts0 + (ts1 - ts0) * j / steps for j in range(steps))
        return (time for time in times if self.start <= time < self.end)  # a trimmed span


def frames_between(
    times: Iterable[Fraction],
    index0: int,
    ts0: Fraction,
    index1: int,
    ts1: Fraction,
    *,
    cut: bool = False,
) -> Iterator[OutputFrame]:
    """Source every output time in ``times`` (all in ``[ts0, ts1)``) from anchors 0 and 1.

    Across a scene cut nothing is blended: the nearer input frame is repeated (a tie goes to 0).
    """
    for time in times:
        t = float((time - ts0) / (ts1 - ts0))
        if cut:
            nearer = index1 if t > 0.5 else index0
            yield OutputFrame(time, nearer, nearer, 0.0)
        else:
            yield OutputFrame(time, index0, index1, t)


def hold(times: Iterable[Fraction], index: int) -> Iterator[OutputFrame]:
    """Output times after the last anchor: repeat it."""
    return (OutputFrame(time, index, index, 0.0) for time in times)


def plan(
    timestamps: Sequence[Fraction],
    end: Fraction,
    *,
    fps: Fraction | None = None,
    factor: int | None = None,
    frame_interval: int = 1,
    cuts: frozenset[int] = frozenset(),
) -> list[OutputFrame]:
    """The whole output timeline of a video known in advance (the pipeline streams the same steps).

    Args:
        timestamps: strictly increasing presentation times (s) of all input frames.
        end: end of the last input frame's display.
        cuts: input indices ``i`` such that a scene cut lies between kept frame ``i`` and the
            kept frame before it.
    Returns:
        One ``OutputFrame`` per output frame, in presentation order; indices refer to ``timestamps``.
    """
    kept = select(len(timestamps), frame_interval)
    timeline = Timeline(timestamps[0], end, fps=fps, factor=factor)
    frames: list[OutputFrame] = []
    for a, b in itertools.pairwise(kept):
        times = timeline.times_between(timestamps[a], timestamps[b])
        frames += frames_between(times, a, timestamps[a], b, timestamps[b], cut=b in cuts)
    frames += hold(timeline.times_between(timestamps[kept[-1]], end), kept[-1])
    return frames


def select(count: int, frame_interval: int) -> list[int]:
    """Indices of the input frames kept by ``--frame-interval`` (0, k, 2k, ...)."""
    if frame_interval < 1:
        raise EmavfiError(f"the frame interval must be 1 or more, got {frame_interval}")
    return list(range(0, count, frame_interval))
