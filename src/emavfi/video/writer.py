"""Writing the output: a video file (PyAV) or an image-sequence folder, atomically.

Everything is written under a temporary name in the destination folder and renamed only when
complete (``commit``); ``abort`` removes it, so an error or Ctrl-C leaves no partial output.
Audio and subtitle streams of the input are copied packet for packet (no re-encoding), interleaved
with the video as it is written, so they stay in sync and keep their duration.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from emavfi.errors import EmavfiError
from emavfi.video.reader import VideoInfo

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".gif")
CRF_CODECS = ("libx264", "libx265", "libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1")
DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 17  # x264's "visually lossless" region


def is_sequence_output(path: str | Path) -> bool:
    """A folder (existing, trailing slash or no suffix) means an image sequence."""
    text = str(path)
    path = Path(path)
    return path.is_dir() or text.endswith(("/", os.sep)) or not path.suffix


def check_output(path: str | Path, input_path: str | Path) -> Path:
    """Validate the output path (not the input, writable folder); returns it as a Path."""
    path, input_path = Path(path), Path(input_path)
    if path.resolve() == input_path.resolve() or (
        path.exists() and input_path.exists() and path.samefile(input_path)
    ):
        raise EmavfiError(f"the output {path} is the input; choose another name")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise EmavfiError(f"cannot write {path}: folder {parent} does not exist")
    _check_writable(path, parent)
    if is_sequence_output(path):
        if path.is_dir() and any(path.iterdir()):
            raise EmavfiError(f"output folder {path} is not empty")
    elif path.suffix.lower() not in VIDEO_SUFFIXES:
        raise EmavfiError(
            f"unknown video file type {path.suffix!r}; use one of {', '.join(VIDEO_SUFFIXES)}"
        )
    return path


def _check_writable(path: Path, parent: Path) -> None:
    """Create and remove a file in ``parent``: ``os.access`` says yes to root everywhere, and a
    read-only mount or a folder like /proc would otherwise fail only after all the work."""
    try:
        with tempfile.NamedTemporaryFile(prefix=f".{path.stem}.probe-", dir=parent):
            pass
    except OSError as exc:
        raise EmavfiError(
            f"cannot write {path}: folder {parent} is not writable ({exc.strerror})"
        ) from exc


def check_codec(name: str) -> str:
    """The encoder name (``h264`` -> the library's H.264 encoder); unknown names raise."""
    import av

    try:
        return av.codec.Codec(name, "w").name
    except (av.FFmpegError, ValueError) as exc:
        raise EmavfiError(
            f"unknown or unavailable video codec {name!r} (e.g. libx264, libx265, mpeg4, ffv1)"
        ) from exc


class SequenceSink:
    """PNG frames ``frame_000000.png ...`` into a folder that appears only when complete."""

    def __init__(self, path: Path):
        self.path = path
        self._tmp = _temp_path(path, "")
        self._tmp.mkdir()
        self.count = 0

    def write(self, item: tuple[Fraction, np.ndarray]) -> None:
        import cv2

        _, rgb = item
        if not cv2.imwrite(str(self._tmp / f"frame_{self.count:06d}.png"), rgb[..., ::-1]):
            raise EmavfiError(f"cannot write frames into {self._tmp}")
        self.count += 1

    def commit(self) -> None:
        if self.path.is_dir():
            self.path.rmdir()  # checked empty before we started
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


class VideoSink:
    """Encode RGB frames at given times into a video file, copying the input's other streams.

    Args:
        path: final output path (the container is chosen from its suffix).
        info: the probed input (size, aspect ratio, rotation, colour, streams to copy).
        time_base: exact time base of the output timestamps; rate: nominal frame rate.
    """

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        *,
        time_base: Fraction,
        rate: Fraction,
        codec: str = DEFAULT_CODEC,
        crf: int | None = DEFAULT_CRF,
        copy_streams: bool = True,
    ):
        import av

        self.path, self.info, self.time_base = path, info, time_base
        self._tmp = _temp_path(path, path.suffix)
        tmp = str(self._tmp)
        self.count = 0
        self._source = None
        try:
            self._container = av.open(tmp, "w", format=_format_for(path))
            self._stream = self._add_video_stream(codec, crf, rate)
            if copy_streams and info.other_streams and not info.is_sequence:
                self._open_copies()
        except BaseException:
            self.abort()
            raise

    def _add_video_stream(self, codec: str, crf: int | None, rate: Fraction):
        stream = self._container.add_stream(codec, rate=rate)
        stream.width, stream.height = self.info.width, self.info.height
        stream.pix_fmt = _pixel_format(
            stream.codec_context.codec, self.info.width, self.info.height
        )
        stream.codec_context.time_base = self.time_base
        stream.time_base = self.time_base
        if crf is not None and stream.codec_context.codec.name in CRF_CODECS:
            stream.options = {"crf": str(crf), **({"b": "0"} if "vpx" in codec else {})}
        if self.info.sample_aspect_ratio:
            stream.codec_context.sample_aspect_ratio = self.info.sample_aspect_ratio
        for name, value in self.info.colour.items():
            try:
                setattr(stream.codec_context, name, value)
            except (AttributeError, ValueError, TypeError):
                log.debug("cannot set %s on the output", name)
        if self.info.rotation:
            stream.set_display_rotation(self.info.rotation)
        return stream

    def _open_copies(self) -> None:
        import av

        self._source = av.open(str(self.info.path))
        self._copies = {}
        for in_stream in list(self._source.streams.audio) + list(self._source.streams.subtitles):
            try:
                self._copies[in_stream.index] = self._container.add_stream_from_template(in_stream)
            except (av.FFmpegError, ValueError) as exc:
                log.warning(
                    "cannot copy %s stream %d into %s: %s",
                    in_stream.type,
                    in_stream.index,
                    self.path.suffix,
                    exc,
                )
        if not self._copies:
            self._source.close()
            self._source = None
            return
        streams = [self._source.streams[i] for i in self._copies]
        self._packets = (p for p in self._source.demux(*streams) if p.size > 0 or p.pts is not None)
        self._held = None

    def _copy_until(self, time: Fraction | None) -> None:
        """Mux copied packets that start before ``time`` (None: all that remain)."""
        if self._source is None:
            return
        while True:
            packet = self._held or next(self._packets, None)
            self._held = None
            if packet is None:
                return
            if packet.dts is None and packet.pts is None:
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            if time is not None and stamp * Fraction(packet.time_base) > time:
                self._held = packet
                return
            packet.stream = self._copies[packet.stream.index]
            self._container.mux(packet)

    def write(self, item: tuple[Fraction, np.ndarray]) -> None:
        """Encode one ``(time, rgb)`` frame; ``rgb`` is ``(H, W, 3)`` uint8."""
        import av

        time, rgb = item
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame = frame.reformat(format=self._stream.pix_fmt)
        frame.pts = round(time / self.time_base)
        frame.time_base = self.time_base
        self._copy_until(time)
        self._container.mux(self._stream.encode(frame))
        self.count += 1

    def commit(self) -> None:
        """Flush the encoder, copy the rest of the other streams, close and rename."""
        try:
            self._container.mux(self._stream.encode(None))
            self._copy_until(None)
            self._close()
        except BaseException:
            self.abort()
            raise
        os.replace(self._tmp, self.path)

    def _close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
        self._container.close()

    def abort(self) -> None:
        try:
            if getattr(self, "_container", None) is not None:
                self._close()
        except Exception as exc:  # noqa: BLE001 - the file is being thrown away anyway
            log.debug("closing the partial output failed: %s", exc)
        self._tmp.unlink(missing_ok=True)


def _temp_path(path: Path, suffix: str) -> Path:
    """A fresh hidden name next to ``path`` (same folder, so the final rename is atomic); created
    by the writer itself so that it gets the usual permissions, unlike ``mkstemp``'s 0600."""
    return path.resolve().parent / f".{path.stem}.partial-{secrets.token_hex(6)}{suffix}"


def _format_for(path: Path) -> str | None:
    return {".mkv": "matroska", ".m4v": "mp4", ".ts": "mpegts"}.get(path.suffix.lower())


def _pixel_format(codec, width: int, height: int) -> str:
    """yuv420p where the codec takes it and the size is even (4:2:0 needs even sizes), else
    yuv444p (odd sizes keep every pixel), else what the codec offers."""
    formats = [f.name for f in (codec.video_formats or [])]
    preferred = (["yuv420p"] if width % 2 == 0 and height % 2 == 0 else []) + [
        "yuv444p",
        "rgb24",
        "bgr0",
    ]
    if not formats:
        return preferred[0]
    return next((name for name in preferred if name in formats), formats[0])
