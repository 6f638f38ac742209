"""What the page shows about videos: a one-line description, and the frames around a moment.

Times here are seconds from the start of each video's stream, so that a moment means the same
instant in the input and in the interpolated output.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Generator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from emavfi.video import reader as video_reader

SAME_TIME_S = 1e-4  # an output frame this close to an input frame's time is that frame's copy
MAX_AROUND = 16  # frames shown around a moment


def describe_video(path: Path) -> str:
    """``320x180 · 25 fps · 1.00 s (25 frames) · audio: aac 44100 Hz mono``; bad input raises
    the pipeline's own EmavfiError (it is probed the same way)."""
    import av

    info = video_reader.probe(path)
    with av.open(str(path)) as container:
        audio = [
            f"{s.codec_context.name} {s.rate} Hz {s.layout.name}" for s in container.streams.audio
        ]
    duration = float(info.end - info.start)
    return " · ".join(
        [
            f"{info.width}x{info.height}",
            f"{float(info.rate):.4g} fps",
            f"{duration:.2f} s ({info.frames} frames)",
            f"audio: {', '.join(audio)}" if audio else "no audio",
        ]
    )


def duration(path: Path) -> float:
    info = video_reader.probe(path)
    return float(info.end - info.start)


@dataclass
class Moment:
    """The input frame on screen at a moment, the output frame on screen then, and the output
    frames from that input frame to the next one, each with a caption."""

    input_frame: np.ndarray
    output_frame: np.ndarray
    around: list[tuple[np.ndarray, str]]


def moment(input_path: Path, output_path: Path, seconds: float) -> Moment:
    """The frames of ``input_path`` and its interpolation ``output_path`` at ``seconds``."""
    before = after = None
    with contextlib.closing(_frames(input_path, seconds)) as inputs:
        for time, rgb in inputs:
            if time <= seconds + SAME_TIME_S or before is None:
                before = (time, rgb)
            else:
                after = (time, rgb)
                break
    start, stop = before[0], after[0] if after else float("inf")
    around, on_screen = [], None
    with contextlib.closing(_frames(output_path, start)) as outputs:
        for time, rgb in outputs:
            if time < start - SAME_TIME_S:
                continue
            if time > stop + SAME_TIME_S or len(around) == MAX_AROUND:
                break
            if time <= seconds + SAME_TIME_S:
                on_screen = rgb
            is_input = min(abs(time - start), abs(time - stop)) < SAME_TIME_S
            around.append((rgb, f"{'input' if is_input else 'new'} frame, {time:.3f} s"))
    if on_screen is None:  # the output starts later than the moment: its first frame
        on_screen = around[0][0]
    return Moment(before[1], on_screen, around)


def _frames(path: Path, since: float) -> Generator[tuple[float, np.ndarray], None, None]:
    """``(seconds from the stream's start, RGB)`` from the keyframe before ``since`` on.

    A file whose timestamps cannot be used (a raw stream, which cannot seek either, or an AVI
    with B-frames) is decoded from its start and timed as the pipeline times it.
    """
    import av

    info = _probe(str(path), *_stamp(path))
    if info.frame_times is not None:
        with contextlib.closing(video_reader.decode_frames(info, eight_bit=True)) as frames:
            for _, time, rgb in frames:
                yield float(time - info.start), rgb
        return
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base)
        start = Fraction(stream.start_time or 0) * time_base
        seek = max(Fraction(since).limit_denominator(10**6) + start - 1, Fraction(0))
        container.seek(int(seek / time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            yield float(frame.pts * time_base - start), frame.to_ndarray(format="rgb24")


def _stamp(path: Path) -> tuple[int, int]:
    stat = Path(path).stat()
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=8)
def _probe(path: str, mtime_ns: int, size: int) -> video_reader.VideoInfo:
    """``probe`` once per file version (the slider asks for moment after moment)."""
    return video_reader.probe(path)
