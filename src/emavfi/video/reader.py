"""Reading videos (PyAV) and image-sequence folders: probing and streaming decoded RGB frames.

``probe`` reads the container's packets for the span of the timeline, the metadata the writer
carries over and whether the file is complete. ``decode_frames`` yields ``(index, time, rgb)``
with ``rgb`` an ``(H, W, 3)`` RGB array (uint8, or uint16 for inputs of more than 8 bits) and
``time`` the presentation time in seconds (``Fraction``); ``read_frames`` runs it in a thread.

Every decoded frame is kept, in the decoder's output order, which is display order. Its time is
the frame's own timestamp when the file's timestamps are sound. When they are missing (raw
H.264 streams), duplicated or out of display order (AVI with B-frames), the probe decodes the
file once and times every frame as ffmpeg's best-effort timestamp does: the frames' pts, or their
dts when those are out of order less often; frames with neither follow at the nominal rate (the
bitstream's own timing, else ffmpeg's 25 fps). One warning says so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from emavfi.errors import EmavfiError
from emavfi.imageio import check_frame_size, list_images, read_image
from emavfi.video.threads import BackgroundProducer

log = logging.getLogger(__name__)

RAW_STREAM_FPS = Fraction(25)  # ffmpeg's rate for a stream that declares none
FIRST_FRAMES = 32  # frames decoded by the probe to check that the timestamps follow display order
TRUNCATION_SLACK = Fraction(1, 2)  # s: data ending this much before the declared end is missing


@dataclass
class VideoInfo:
    """What the pipeline needs to know about an input before decoding it.

    ``start``/``end``: the span covered by the frames (s); ``rate``: average frame rate;
    ``frames``: number of frames; ``time_base`` of the video stream; ``frame_times``: the time of
    every frame in display order when the file's own timestamps cannot be used (else None);
    ``bit_depth``: bits per sample of the decoded video; ``truncated``: why the file is missing
    data, or None.
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
    frame_times: list[Fraction] | None = None
    bit_depth: int = 8
    truncated: str | None = None


def probe(path: str | Path, input_fps: float | Fraction | None = None) -> VideoInfo:
    """Inspect a video file or an image-sequence folder; bad input raises EmavfiError.

    ``input_fps``: the rate of an image folder (default 25) or of a stream without timestamps
    (default: its bitstream's timing, else 25).
    """
    path = Path(path)
    if not path.exists():
        raise EmavfiError(f"input not found: {path}")
    rate = Fraction(str(input_fps)) if input_fps else None
    if path.is_dir():
        return _probe_sequence(path, rate or RAW_STREAM_FPS)
    info, packets = _probe_container(path)
    if packets.problem is None and len(packets.pts) < 2:
        raise EmavfiError(f"{path} has fewer than two video frames ({len(packets.pts)})")
    if packets.problem is None:
        info.rotation, stamps = _first_frames(path, FIRST_FRAMES)
        if _faults([pts for pts, _ in stamps]):
            packets.problem = "out of display order"
    if packets.problem is not None:
        _time_every_frame(info, packets, rate)
    else:
        times = sorted(packets.pts)
        info.frames = len(times)
        info.start = times[0] * info.time_base
        last = packets.durations[packets.pts.index(times[-1])] * info.time_base
        info.end = times[-1] * info.time_base + (last if last > 0 else 1 / info.rate)
    if info.frames < 2:
        raise EmavfiError(f"{path} has fewer than two video frames ({info.frames})")
    info.truncated = packets.truncation(info)
    return info


@dataclass
class _Packets:
    """What demuxing the whole file tells: the video packets' timestamps (decode order), the
    end of the data over every stream, and what the container declares."""

    pts: list[int | None] = field(default_factory=list)
    durations: list[int] = field(default_factory=list)
    count: int = 0  # video packets, empty ones included (an index counts those too)
    data_end: Fraction | None = None
    declared_frames: int = 0
    declared_rate: Fraction | None = None  # the bitstream's own timing (H.264 VUI), if any
    declared_end: Fraction | None = None
    error: str | None = None
    problem: str | None = None  # what is wrong with the timestamps, if anything

    def truncation(self, info: VideoInfo) -> str | None:
        """Why the file ends before its header says it does (None: it does not)."""
        if self.error is not None:
            return f"reading stopped after {self.count} video packets ({self.error})"
        if self.declared_frames > self.count:
            return f"its index lists {self.declared_frames} frames, the file holds {self.count}"
        if info.frame_times is None and self.declared_end is not None and self.data_end is not None:
            slack = max(TRUNCATION_SLACK, 3 / info.rate)
            if self.data_end + slack < self.declared_end:
                return (
                    f"it should last {float(self.declared_end):.2f} s, "
                    f"its data ends at {float(self.data_end):.2f} s"
                )
        return None


def _probe_container(path: Path) -> tuple[VideoInfo, _Packets]:
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, ValueError) as exc:
        raise EmavfiError(
            f"cannot read {path}: {_reason(exc)} (not a video, or no decodable video)"
        ) from None
    with container:
        if not container.streams.video:
            raise EmavfiError(f"{path} has no video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context
        check_frame_size(codec.width, codec.height, path)
        info = VideoInfo(
            path=path,
            width=codec.width,
            height=codec.height,
            frames=0,
            start=Fraction(0),
            end=Fraction(0),
            rate=Fraction(stream.average_rate or stream.guessed_rate or RAW_STREAM_FPS),
            time_base=Fraction(stream.time_base),
            sample_aspect_ratio=Fraction(codec.sample_aspect_ratio)
            if codec.sample_aspect_ratio
            else None,
            colour=_colour(codec),
            other_streams=len(container.streams.audio) + len(container.streams.subtitles),
            bit_depth=_bit_depth(codec.format),
        )
        packets = _scan(container, stream)
        packets.declared_rate = Fraction(codec.framerate) if codec.framerate else None
    if packets.count < 2 and packets.error is not None:
        raise EmavfiError(f"cannot read {path}: {packets.error} (unreadable or truncated file?)")
    return info, packets


def _scan(container, stream) -> _Packets:
    """Demux every stream once: the video packets' timestamps and the end of all data."""
    import av

    packets = _Packets(declared_frames=stream.frames or 0)
    if container.duration:
        start = Fraction(container.start_time or 0, av.time_base)
        packets.declared_end = start + Fraction(container.duration, av.time_base)
    try:
        for packet in container.demux():
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is not None and packet.time_base is not None:
                end = (stamp + (packet.duration or 0)) * Fraction(packet.time_base)
                packets.data_end = end if packets.data_end is None else max(packets.data_end, end)
            if packet.stream.index != stream.index or (packet.size == 0 and packet.pts is None):
                continue
            packets.count += 1
            if packet.size:
                packets.pts.append(packet.pts)
                packets.durations.append(packet.duration or 0)
    except av.FFmpegError as exc:
        packets.error = _reason(exc)
    present = [pts for pts in packets.pts if pts is not None]
    if len(present) < len(packets.pts):
        packets.problem = "missing"
    elif len(set(present)) < len(present):
        packets.problem = "duplicated"
    return packets


def _first_frames(path: Path, limit: int | None) -> tuple[int, list[tuple[int | None, int | None]]]:
    """The rotation of the first frame and ``(pts, dts)`` of the first ``limit`` frames (None:
    all). The file is opened afresh: raw streams cannot seek back."""
    rotation, stamps = 0, []
    with _open(path) as container:
        stream = _video_stream(container)
        for frame in _decoded(container, stream, path):
            if not stamps:
                rotation = round(getattr(frame, "rotation", 0) or 0) % 360
            stamps.append((frame.pts, frame.dts))
            if limit is not None and len(stamps) >= limit:
                break
    return rotation, stamps


def _time_every_frame(info: VideoInfo, packets: _Packets, rate: Fraction | None) -> None:
    """Decode the whole file once and give every frame a best-effort time (one warning)."""
    info.rotation, stamps = _first_frames(info.path, None)
    if all(pts is None and dts is None for pts, dts in stamps):
        declared = packets.declared_rate
        info.rate = rate or declared or RAW_STREAM_FPS
        source = (
            "from --input-fps"
            if rate
            else "from its bitstream's timing"
            if declared
            else "it declares none: ffmpeg's default; --input-fps sets another"
        )
        log.warning(
            "%s has no timestamps (a raw stream): %d frames at %s fps (%s)",
            info.path.name,
            len(stamps),
            _fps_text(info.rate),
            source,
        )
    else:
        log.warning(
            "%s: its timestamps are %s; every frame is kept in display order with best-effort "
            "timestamps (as ffmpeg does)",
            info.path.name,
            packets.problem,
        )
    info.frame_times = best_effort_times(stamps, info.time_base, info.rate)
    info.frames = len(info.frame_times)
    if info.frames:
        info.start = info.frame_times[0]
        info.end = info.frame_times[-1] + 1 / info.rate


def best_effort_times(
    stamps: list[tuple[int | None, int | None]], time_base: Fraction, rate: Fraction
) -> list[Fraction]:
    """Strictly increasing times (s) for frames in display order, from their ``(pts, dts)``.

    Like ffmpeg's best-effort timestamp: the pts, unless the dts fail to increase less often (a
    missing value counts as a failure). A frame whose chosen stamp is missing or does not
    increase follows the previous one after ``1 / rate``.
    """
    pts, dts = [s[0] for s in stamps], [s[1] for s in stamps]
    chosen = pts if _faults(pts) <= _faults(dts) else dts
    times: list[Fraction] = []
    for value in chosen:
        time = value * time_base if value is not None else None
        if time is None or (times and time <= times[-1]):
            time = times[-1] + 1 / rate if times else Fraction(0)
        times.append(time)
    return times


def _faults(values: list[int | None]) -> int:
    """How many values are missing or not above the previous value."""
    faults, last = 0, None
    for value in values:
        if value is None or (last is not None and value <= last):
            faults += 1
        if value is not None:
            last = value
    return faults


def _open(path: Path):
    import av

    try:
        return av.open(str(path))
    except (av.FFmpegError, ValueError) as exc:
        raise EmavfiError(f"cannot read {path}: {_reason(exc)}") from None


def _video_stream(container, threads: int | None = None):
    """The first video stream, set up for decoding: FFmpeg's threads (``threads`` of them, or
    its choice), and exact cropping (the unaligned flag: else a crop that is not a multiple of
    the alignment, as in CVFC1_Sony_C.jsv whose 326 coded columns show 300, is left uncropped)."""
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    if threads:
        stream.codec_context.thread_count = threads
    stream.codec_context.options = {"flags": "unaligned"}
    return stream


def _decoded(container, stream, path: Path) -> Iterator:
    """Every frame the decoder makes. A packet that fails to decode is skipped, as ffmpeg does
    (counted in one warning); a demuxing error ends the data (``probe`` has said why)."""
    from av.error import FFmpegError  # bound now: a generator may be closed at interpreter exit

    errors = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except FFmpegError as exc:
                errors += 1
                log.debug("%s: a packet failed to decode: %s", path, _reason(exc))
                continue
            yield from frames
    except FFmpegError as exc:
        log.debug("%s: reading stopped: %s", path, _reason(exc))
    if errors:
        log.warning("%s: %d packet(s) could not be decoded (damaged data)", path.name, errors)


def _bit_depth(video_format) -> int:
    try:
        return max(component.bits for component in video_format.components)
    except (AttributeError, ValueError, TypeError):
        return 8


def _colour(codec) -> dict[str, int]:
    props = {}
    for name in ("color_primaries", "color_trc", "colorspace", "color_range"):
        value = getattr(codec, name, None)
        if value is not None:
            props[name] = int(value)
    return props


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _fps_text(rate: Fraction) -> str:
    return f"{float(rate):g}" if rate.denominator != 1 else str(rate.numerator)


def _probe_sequence(folder: Path, rate: Fraction) -> VideoInfo:
    files = list_images(folder)
    if len(files) < 2:
        raise EmavfiError(f"{folder} holds fewer than two images ({len(files)})")
    first = read_image(files[0])
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


def decode_frames(
    info: VideoInfo, frame_interval: int = 1, *, eight_bit: bool = False, threads: int | None = None
) -> Iterator[tuple[int, Fraction, np.ndarray]]:
    """Every ``frame_interval``-th frame as ``(index, time, rgb)``, in display order; ``rgb`` is
    uint16 for inputs of more than 8 bits unless ``eight_bit``. ``threads``: the decoder's
    (None: FFmpeg's choice, one per core)."""
    if info.is_sequence:
        return _sequence_frames(info, frame_interval)
    return _video_frames(info, frame_interval, eight_bit, threads)


def read_frames(
    info: VideoInfo, frame_interval: int = 1, maxsize: int = 8, threads: int | None = None
) -> FrameStream:
    """``decode_frames`` in a background thread (at most ``maxsize`` frames ahead)."""

    def produce(emit: Callable) -> None:
        with contextlib.closing(decode_frames(info, frame_interval, threads=threads)) as frames:
            for item in frames:
                emit(item)

    return FrameStream(produce, maxsize)


class FrameStream(BackgroundProducer):
    """Iterator of decoded frames; ``close()`` stops the decoder thread early."""

    def __iter__(self) -> Iterator[tuple[int, Fraction, np.ndarray]]:
        return super().__iter__()


def _sequence_frames(info: VideoInfo, frame_interval: int) -> Iterator:
    for index in range(0, len(info.sequence), frame_interval):
        rgb = read_image(info.sequence[index])
        if rgb.shape[:2] != (info.height, info.width):
            raise EmavfiError(
                f"{info.sequence[index].name} is {rgb.shape[1]}x{rgb.shape[0]}, "
                f"the first image is {info.width}x{info.height}"
            )
        yield index, index / info.rate, rgb


def _video_frames(
    info: VideoInfo, frame_interval: int, eight_bit: bool, threads: int | None
) -> Iterator:
    pixel_format = "rgb48le" if info.bit_depth > 8 and not eight_bit else "rgb24"
    size = {"width": info.width, "height": info.height}
    clock = _Clock(info)
    index, resized = 0, False
    with _open(info.path) as container:
        stream = _video_stream(container, threads)
        for frame in _decoded(container, stream, info.path):
            time = clock.time(index, frame.pts)
            if (frame.width, frame.height) != (info.width, info.height) and not resized:
                resized = True  # as ffmpeg does: every frame at the stream's first size
                log.warning(
                    "%s changes size at frame %d (%dx%d): its frames are scaled to %dx%d",
                    info.path.name,
                    index,
                    frame.width,
                    frame.height,
                    info.width,
                    info.height,
                )
            if index % frame_interval == 0:
                yield index, time, frame.to_ndarray(format=pixel_format, **size)
            index += 1
    if index < 2:
        raise EmavfiError(f"{info.path} has fewer than two decodable frames ({index})")


class _Clock:
    """The time of each decoded frame: ``info.frame_times`` when the probe made them, else the
    frame's pts; a pts that is missing or does not increase (which the probe's look at the first
    frames did not catch) is replaced by the previous time plus one frame, with one warning."""

    def __init__(self, info: VideoInfo):
        self.info, self.last, self.warned = info, None, False

    def time(self, index: int, pts: int | None) -> Fraction:
        times = self.info.frame_times
        if times is not None and index < len(times):
            time = times[index]
        else:
            time = pts * self.info.time_base if pts is not None and times is None else None
            if time is None or (self.last is not None and time <= self.last):
                if not self.warned:
                    log.warning(
                        "%s: timestamps stop increasing at frame %d; the frames from there "
                        "follow at %s fps",
                        self.info.path.name,
                        index,
                        _fps_text(self.info.rate),
                    )
                    self.warned = True
                time = self.last + 1 / self.info.rate if self.last is not None else self.info.start
        self.last = time
        return time
