"""``--preview N``: a few synthesised frames, each beside the two inputs it is made from.

To choose a model and settings before a long run: N output times evenly spaced over the span
(``--start``/``--end`` kept), each snapped to the nearest synthesised output time of its input
interval, made as the full run would make it and written as one PNG ``[input 0 | made |
input 1]`` named by its output time. Scene cuts are not looked for: the preview shows the model.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from emavfi.errors import EmavfiError
from emavfi.imageio import frames_to_tensor, tensor_to_frames, write_image
from emavfi.tempfiles import remove_stale_temps, temp_path
from emavfi.video import reader as video_reader
from emavfi.video.pipeline import (
    VideoOptions,
    check_options,
    trimmed_span,
    within,
)
from emavfi.video.timeline import Timeline

log = logging.getLogger(__name__)

MAX_CANDIDATES = 10_000  # output times looked at per input interval (--fps 1e9 has millions)


def write_preview(
    input_path: str | Path,
    folder: str | Path,
    count: int,
    make_interpolator: Callable[[], Callable],
    options: VideoOptions | None = None,
) -> list[Path]:
    """Write ``count`` preview images into ``folder`` (made whole, then renamed into place);
    returns their paths. ``options.overwrite`` replaces a folder that exists."""
    options = options or VideoOptions()
    fps, factor = check_options(options)
    if count < 1:
        raise EmavfiError(f"--preview must be 1 or more, got {count}")
    folder = Path(folder)
    if folder.exists() and not (folder.is_dir() and options.overwrite):
        raise EmavfiError(f"{folder} exists" + ("" if folder.is_dir() else " and is not a folder"))
    info = video_reader.probe(input_path, options.input_fps)
    timeline = Timeline(*trimmed_span(info, options), fps=fps, factor=factor)
    span = timeline.end - timeline.start
    targets = [timeline.start + span * (2 * k + 1) / (2 * count) for k in range(count)]
    interpolator = make_interpolator()
    remove_stale_temps(folder)
    tmp = temp_path(folder)
    tmp.mkdir()
    try:
        written = _write(info, timeline, targets, interpolator, options, tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if len(written) < count:
        log.warning(
            "%d of %d preview times fall where no frame is synthesised", count - len(written), count
        )
    return [folder / name for name in written]


def _write(info, timeline: Timeline, targets, interpolator, options, tmp: Path) -> list[str]:
    written: list[str] = []
    pending = iter(targets)
    target = next(pending)
    previous = None
    frames = video_reader.decode_frames(info, options.frame_interval)
    with contextlib.closing(frames), torch.inference_mode():
        for item in within(frames, timeline.start, timeline.end):
            while previous is not None and target is not None and target < item[1]:
                time = _nearest_synthesised(timeline, previous[1], item[1], target)
                if time is not None:
                    name = f"preview_{len(written) + 1:02d}_{float(time - timeline.start):.3f}s.png"
                    made = _make(interpolator, previous, item, time)
                    write_image(tmp / name, np.concatenate([previous[2], made, item[2]], axis=1))
                    written.append(name)
                target = next(pending, None)
            if target is None:
                break
            previous = item
    return written


def _nearest_synthesised(timeline: Timeline, ts0, ts1, target) -> Fraction | None:
    times = itertools.islice(timeline.times_between(ts0, ts1), MAX_CANDIDATES)
    synthesised = [time for time in times if time > ts0]
    return min(synthesised, key=lambda time: abs(time - target), default=None)


def _make(interpolator, frame0, frame1, time: Fraction) -> np.ndarray:
    t = float((time - frame0[1]) / (frame1[1] - frame0[1]))
    made = interpolator(frames_to_tensor(frame0[2])[None], frames_to_tensor(frame1[2])[None], [t])
    return tensor_to_frames(made[0], frame0[2].dtype)[0]
