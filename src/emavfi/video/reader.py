"""Reading videos (PyAV) and image-sequence folders: probing and streaming decoded RGB frames.

``probe`` reads the container's packets (no decoding) for the timestamps that fix the timeline
span and the metadata that the writer carries over. ``read_frames`` decodes in a background
thread and yields ``(index, time, rgb)`` with ``rgb`` an ``(H, W, 3)`` uint8 RGB array and
``time`` the exact presentation time in seconds (``Fraction``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from emavfi.errors import EmavfiError
from emavfi.video.threads import BackgroundProducer

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class VideoInfo:
    """What the pipeline needs to know about an input before decoding it.

    ``start``/``end``: the span covered by the frames (s); ``rate``: average frame rate;
    ``frames``: number of frames (from the packets); ``time_base`` of the video stream.
    """

    path: Path
    width: int
    height: int
    frames: int
    start: Fraction
    end: Fraction
    rate: Fraction
    time_base: Fraction
    is_sequence: bool = False
    sequence: list[Path] = field(default_factory=list)
    sample_aspect_ratio: Fraction | None = None
    rotation: int = 0
    colour: dict[str, int] = field(default_factory=dict)
    other_streams: int = 0


def probe(path: str | Path, input_fps: float | Fraction | None = None) -> VideoInfo:
    """Inspect a video file or an image-sequence folder; bad input raises EmavfiError."""
    path = Path(path)
    if not path.exists():
        raise EmavfiError(f"input not found: {path}")
    if path.is_dir():
        return _probe_sequence(path, Fraction(str(input_fps)) if input_fps else Fraction(25))
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise EmavfiError(f"{path} has no video stream")
            stream = container.streams.video[0]
            times, durations = _packet_times(container, stream)
            rotation = _first_rotation(container, stream)
            other = len(container.streams.audio) + len(container.streams.subtitles)
            codec = stream.codec_context
            info = VideoInfo(
                path=path,
                width=codec.width,
                height=codec.height,
                frames=len(times),
                start=Fraction(0),
                end=Fraction(0),
                rate=Fraction(stream.average_rate or stream.guessed_rate or 25),
                time_base=Fraction(stream.time_base),
                sample_aspect_ratio=_fraction(codec.sample_aspect_ratio),
                rotation=rotation,
                colour=_colour(codec),
                other_streams=other,
            )
    except av.FFmpegError as exc:
        raise EmavfiError(
            f"cannot read {path}: {exc.strerror or exc} (unreadable or truncated file?)"
        ) from exc
    if len(times) < 2:
        raise EmavfiError(f"{path} has fewer than two video frames ({len(times)})")
    info.start = times[0]
    last = durations[-1] if durations[-1] > 0 else 1 / info.rate
    info.end = times[-1] + last
    return info


def _packet_times(container, stream) -> tuple[list[Fraction], list[Fraction]]:
    """Sorted distinct presentation times (s) of the stream's packets and their durations."""
    time_base = Fraction(stream.time_base)
    by_pts: dict[int, int] = {}
    missing = 0
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        if packet.pts is None:
            missing += 1
            continue
        by_pts[packet.pts] = packet.duration or 0
    if missing:  # some containers (raw streams) carry no pts: decode once for the frames' times
        container.seek(0)
        by_pts = {
            frame.pts if frame.pts is not None else i: 0
            for i, frame in enumerate(container.decode(stream))
        }
    ordered = sorted(by_pts)
    return [p * time_base for p in ordered], [by_pts[p] * time_base for p in ordered]


def _first_rotation(container, stream) -> int:
    container.seek(0)
    try:
        for frame in container.decode(stream):
            return round(getattr(frame, "rotation", 0) or 0) % 360
    except Exception:  # noqa: BLE001 - metadata only: a decoding problem surfaces when reading
        return 0
    return 0


def _colour(codec) -> dict[str, int]:
    props = {}
    for name in ("color_primaries", "color_trc", "colorspace", "color_range"):
        value = getattr(codec, name, None)
        if value is not None:
            props[name] = int(value)
    return props


def _fraction(value) -> Fraction | None:
    return Fraction(value) if value else None


def _probe_sequence(folder: Path, rate: Fraction) -> VideoInfo:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < 2:
        raise EmavfiError(f"{folder} holds fewer than two images ({len(files)})")
    first = _read_image(files[0])
    height, width = first.shape[:2]
    return VideoInfo(
        path=folder,
        width=width,
        height=height,
        frames=len(files),
        start=Fraction(0),
        end=len(files) / rate,
        rate=rate,
        time_base=1 / rate,
        is_sequence=True,
        sequence=files,
    )


def _read_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise EmavfiError(f"cannot read image {path}")
    return np.ascontiguousarray(image[..., ::-1])


def read_frames(info: VideoInfo, frame_interval: int = 1, maxsize: int = 8) -> FrameStream:
    """Decode in a background thread: every ``frame_interval``-th frame as ``(index, time, rgb)``."""
    if info.is_sequence:
        return FrameStream(lambda emit: _produce_sequence(info, frame_interval, emit), maxsize)
    return FrameStream(lambda emit: _produce_video(info, frame_interval, emit), maxsize)


class FrameStream(BackgroundProducer):
    """Iterator of decoded frames; ``close()`` stops the decoder thread early."""

    def __iter__(self) -> Iterator[tuple[int, Fraction, np.ndarray]]:
        return super().__iter__()


def _produce_sequence(info: VideoInfo, frame_interval: int, emit: Callable) -> None:
    for index in range(0, len(info.sequence), frame_interval):
        rgb = _read_image(info.sequence[index])
        if rgb.shape[:2] != (info.height, info.width):
            raise EmavfiError(
                f"{info.sequence[index].name} is {rgb.shape[1]}x{rgb.shape[0]}, "
                f"the first image is {info.width}x{info.height}"
            )
        emit((index, index / info.rate, rgb))


def _produce_video(info: VideoInfo, frame_interval: int, emit: Callable) -> None:
    import av

    last_time: Fraction | None = None
    index = 0
    try:
        with av.open(str(info.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            time_base = Fraction(stream.time_base)
            for frame in container.decode(stream):
                time = (
                    frame.pts * time_base
                    if frame.pts is not None
                    else info.start + index / info.rate
                )
                if last_time is not None and time <= last_time:
                    log.debug("skipping a frame whose timestamp %s does not increase", time)
                    continue
                last_time = time
                if index % frame_interval == 0:
                    emit((index, time, frame.to_ndarray(format="rgb24")))
                index += 1
    except av.FFmpegError as exc:
        raise EmavfiError(
            f"cannot decode {info.path}: {exc.strerror or exc} (truncated or corrupt?)"
        ) from exc
    if index < 2:
        raise EmavfiError(f"{info.path} has fewer than two decodable frames ({index})")
