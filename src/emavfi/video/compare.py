"""Side-by-side comparison video: the input (each frame held until the next) | the output.

Both videos are streamed; the comparison has the output's timestamps, so it plays the input at
its own rate next to the interpolated result.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from emavfi.video import reader as video_reader
from emavfi.video import writer as video_writer

DIVIDER = 4  # white pixels between the halves


def side_by_side(
    input_path: str | Path,
    output_path: str | Path,
    comparison_path: str | Path,
    overwrite: bool = False,
) -> Path:
    """Write ``comparison_path``: ``input | output`` at the output's frame times. Returns it."""
    comparison_path = video_writer.check_output(comparison_path, input_path, overwrite)
    before = video_reader.probe(input_path)
    after = video_reader.probe(output_path)
    info = dataclasses.replace(
        after,
        width=before.width + DIVIDER + after.width,
        height=max(before.height, after.height),
        other_streams=0,
        rotation=0,
    )
    sink = video_writer.VideoSink(
        comparison_path, info, time_base=after.time_base, rate=after.rate, copy_streams=False
    )
    input_stream = video_reader.read_frames(before)
    outputs = video_reader.read_frames(after)
    inputs = iter(input_stream)
    try:
        _, next_time, next_frame = next(inputs)
        shown = next_frame
        for _, time, frame in outputs:
            while next_frame is not None and next_time - before.start <= time - after.start:
                shown = next_frame
                _, next_time, next_frame = next(inputs, (None, None, None))
            sink.write((time, _join(shown, frame, info.height)))
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    finally:
        input_stream.close()
        outputs.close()
    return comparison_path


def _join(left: np.ndarray, right: np.ndarray, height: int) -> np.ndarray:
    """(H, W, 3) uint8 images side by side with a white divider, padded to ``height``."""
    canvas = np.zeros((height, left.shape[1] + DIVIDER + right.shape[1], 3), np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[:, left.shape[1] : left.shape[1] + DIVIDER] = 255
    canvas[: right.shape[0], left.shape[1] + DIVIDER :] = right
    return canvas
