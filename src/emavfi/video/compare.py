"""Side-by-side comparison video: the input (each frame held until the next) | the output.

Both videos are streamed; the comparison has the output's timestamps, so it plays the input at
its own rate next to the interpolated result. Each half carries its label in its top-left corner
(white on a black box, so it reads on any picture).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from emavfi.video import reader as video_reader
from emavfi.video import writer as video_writer

DIVIDER = 4  # white pixels between the halves
DEFAULT_LABELS = ("input", "interpolated")


def side_by_side(
    input_path: str | Path,
    output_path: str | Path,
    comparison_path: str | Path,
    labels: tuple[str, str] | None = DEFAULT_LABELS,
    overwrite: bool = False,
) -> Path:
    """Write ``comparison_path``: ``input | output`` at the output's frame times. Returns it.

    ``labels``: the texts drawn on the left and right halves (None: no labels).
    ``overwrite``: replace an existing ``comparison_path`` (otherwise that is an error).
    """
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
            sink.write((time, _join(shown, frame, info.height, labels)))
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    finally:
        input_stream.close()
        outputs.close()
    return comparison_path


def _join(
    left: np.ndarray, right: np.ndarray, height: int, labels: tuple[str, str] | None
) -> np.ndarray:
    """(H, W, 3) uint8 images side by side with a white divider, padded to ``height``, labelled."""
    if labels is not None:
        left, right = labelled(left, labels[0]), labelled(right, labels[1])
    canvas = np.zeros((height, left.shape[1] + DIVIDER + right.shape[1], 3), np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[:, left.shape[1] : left.shape[1] + DIVIDER] = 255
    canvas[: right.shape[0], left.shape[1] + DIVIDER :] = right
    return canvas


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of the (H, W, 3) uint8 ``image`` with ``text`` in its top-left corner.

    White text on a black box, so that it reads on any picture; the text grows with the frame
    (about 1/15 of its height) and is cut at the image's right edge.
    """
    import cv2

    image = np.ascontiguousarray(image).copy()
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.4, image.shape[0] / 360)
    thickness = max(1, round(scale))
    (text_width, text_height), baseline = cv2.getTextSize(text, font, scale, thickness)
    margin = max(2, round(4 * scale))
    box = (text_width + 2 * margin - 1, text_height + baseline + 2 * margin - 1)
    cv2.rectangle(image, (0, 0), box, (0, 0, 0), cv2.FILLED)
    origin = (margin, margin + text_height)
    cv2.putText(image, text, origin, font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return image
