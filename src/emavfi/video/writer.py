"""Writing the output: a video file (PyAV) or an image-sequence folder, atomically.

Everything is written under a temporary name in the destination folder and renamed only when
complete (``commit``); ``abort`` removes it, so an error, Ctrl-C or SIGTERM leaves no partial
output, and a later run removes what a killed one (SIGKILL) left (``emavfi.tempfiles``).
An existing output is replaced only when asked (``overwrite``). The codec is one the container
takes (VP9 for .webm, a palette for .gif when none is asked for); inputs of more than 8 bits are
encoded with 10 bits where the codec can. Audio and subtitle streams of the input are copied packet for packet (no re-encoding), interleaved
with the video as it is written, so they stay in sync and keep their duration.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from emavfi.errors import EmavfiError
from emavfi.tempfiles import remove_stale_temps, temp_path
from emavfi.video.reader import VideoInfo

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".gif")
CRF_CODECS = ("libx264", "libx265", "libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1")
DEFAULT_CODEC = "libx264"  # where the container takes it; else the container's own default
DEFAULT_CRF = 17  # x264's "visually lossless" region
DEEP_FORMATS = ("yuv420p10le", "yuv444p10le", "gbrp10le")  # for inputs of more than 8 bits
# AVColorSpace -> the matrix swscale converts RGB with (601 when unknown, as FFmpeg does)
_MATRICES = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}


def is_sequence_output(path: str | Path) -> bool:
    """A folder (existing, trailing slash or no suffix) means an image sequence."""
    text = str(path)
    path = Path(path)
    return path.is_dir() or text.endswith(("/", os.sep)) or not path.suffix


def check_output(path: str | Path, input_path: str | Path, overwrite: bool = False) -> Path:
    """Validate the output path (not the input, writable folder, not an existing file unless
    ``overwrite``, not a folder with files in it); returns it as a Path."""
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
    elif path.exists() and not overwrite:
        raise EmavfiError(f"{path} exists (-y overwrites it)")
    elif path.is_dir():
        raise EmavfiError(f"{path} is a folder, not a video file")
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


def check_codec(name: str | None) -> str | None:
    """The encoder name (``h264`` -> the library's H.264 encoder); unknown names raise.
    None (no codec asked for) stays None: the sink picks one the container takes."""
    import av

    if name is None:
        return None
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
        remove_stale_temps(path)
        self._tmp = temp_path(path)
        self._tmp.mkdir()
        self.count = 0

    def write(self, item: tuple[Fraction, np.ndarray]) -> None:
        """Write one ``(time, rgb)`` frame (8 or 16 bits, as read: PNG keeps both)."""
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
        codec: encoder name, or None for libx264 where the container takes it, else the
            container's default (VP9 for .webm, GIF for .gif).
        span: the input times kept ``[start, end)`` (default: all). Frame times are input times;
            the output's are shifted by ``start`` when the span starts later than the input, and
            the copied streams keep the packets that start in the span, shifted alike.
        threads: the encoder's threads (None: its own choice, about one per core).
        b_frames: False encodes without B-frames (segments: their decode times then never go
            back across a join).
        template: a video stream whose encoded packets ``write_packet`` copies (a join of
            segments) instead of frames to encode.
    """

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        *,
        time_base: Fraction,
        rate: Fraction,
        codec: str | None = None,
        crf: int | None = DEFAULT_CRF,
        copy_streams: bool = True,
        span: tuple[Fraction, Fraction] | None = None,
        threads: int | None = None,
        b_frames: bool = True,
        template=None,
    ):
        import av

        self.path, self.info, self.time_base = path, info, time_base
        start, end = span or (info.start, info.end)
        self.offset = start - info.start  # of a trimmed span: its start is the output's
        self.copy_from = start if start > info.start else None  # copied packets kept: a trim's
        self.copy_to = end if end < info.end else None
        remove_stale_temps(path)
        self._tmp = temp_path(path, path.suffix)
        tmp = str(self._tmp)
        self.count = 0
        self._source = None
        self._remux = template is not None
        try:
            self._container = av.open(tmp, "w", format=_format_for(path))
            if template is not None:
                self._stream = self._container.add_stream_from_template(template)
                self._stream.time_base = time_base
            else:
                self._stream = self._add_video_stream(codec, crf, rate, b_frames)
            if threads and template is None:
                self._stream.codec_context.thread_count = threads
            if copy_streams and info.other_streams and not info.is_sequence:
                self._open_copies()
        except BaseException:
            self.abort()
            raise

    def _add_video_stream(
        self, codec: str | None, crf: int | None, rate: Fraction, b_frames: bool = True
    ):
        stream = self._new_stream(codec, rate)
        name = stream.codec_context.codec.name
        stream.width, stream.height = self.info.width, self.info.height
        stream.pix_fmt = _pixel_format(stream.codec_context.codec, self.info)
        stream.codec_context.time_base = self.time_base
        stream.time_base = self.time_base
        options = {"x265-params": "log-level=error"} if name == "libx265" else {}  # else: chatty
        if crf is not None and name in CRF_CODECS:
            options.update({"crf": str(crf), **({"b": "0"} if "vpx" in name else {})})
        if not b_frames:
            options["bf"] = "0"
        stream.options = options
        if self.info.sample_aspect_ratio:
            stream.codec_context.sample_aspect_ratio = self.info.sample_aspect_ratio
        for key, value in self.info.colour.items():
            try:
                setattr(stream.codec_context, key, value)
            except (AttributeError, ValueError, TypeError):
                log.debug("cannot set %s on the output", key)
        if self.info.rotation:
            stream.set_display_rotation(self.info.rotation)
        return stream

    def _new_stream(self, codec: str | None, rate: Fraction):
        """The video stream: ``codec``, or (None) libx264 if the container takes it, else the
        container's default video codec."""
        suffix = self.path.suffix
        try:
            return self._container.add_stream(codec or DEFAULT_CODEC, rate=rate)
        except ValueError as exc:
            default = self._container.default_video_codec
            if codec is not None:
                raise EmavfiError(
                    f"a {suffix} file cannot hold {codec} video; leave out --codec "
                    f"({default} is the default for {suffix}) or choose another file type"
                ) from exc
            if not default or default == "none":
                raise EmavfiError(f"{suffix} files cannot hold video") from exc
            return self._container.add_stream(default, rate=rate)

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
            seconds = stamp * Fraction(packet.time_base)
            after = self.copy_to is not None and seconds >= self.copy_to
            if after or (time is not None and seconds > time):
                self._held = packet
                return
            if self.copy_from is not None and seconds < self.copy_from:
                continue
            shift = round(self.offset / Fraction(packet.time_base))
            if shift:
                packet.pts = None if packet.pts is None else packet.pts - shift
                packet.dts = None if packet.dts is None else packet.dts - shift
            packet.stream = self._copies[packet.stream.index]
            self._container.mux(packet)

    def write(self, item: tuple[Fraction, np.ndarray]) -> None:
        """Encode one ``(time, rgb)`` frame; ``rgb`` is ``(H, W, 3)`` uint8 or uint16."""
        time, rgb = item
        frame = self._encodable(rgb)
        frame.pts = round((time - self.offset) / self.time_base)
        frame.time_base = self.time_base
        self._copy_until(time)
        self._container.mux(self._stream.encode(frame))
        self.count += 1

    def write_packet(self, packet) -> None:
        """Copy one encoded video packet of the template's kind, its timestamps kept."""
        time = packet.pts * Fraction(packet.time_base) + self.offset  # the input's clock
        self._copy_until(time)
        packet.stream = self._stream
        self._container.mux(packet)
        self.count += 1

    def _encodable(self, rgb: np.ndarray):
        """An RGB array as a frame in the stream's pixel format, converted with the matrix and
        range of the input's colour tags."""
        import av

        if self._stream.pix_fmt == "pal8":
            return _palette_frame(rgb)
        rgb_format = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
        frame = av.VideoFrame.from_ndarray(rgb, format=rgb_format)
        return frame.reformat(
            format=self._stream.pix_fmt,
            dst_colorspace=_MATRICES.get(self.info.colour.get("colorspace")),
            dst_color_range=self.info.colour.get("color_range") or None,
        )

    def commit(self) -> None:
        """Flush the encoder, copy the rest of the other streams, close and rename."""
        try:
            if not self._remux:
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


def _format_for(path: Path) -> str | None:
    return {".mkv": "matroska", ".m4v": "mp4", ".ts": "mpegts"}.get(path.suffix.lower())


def _pixel_format(codec, info: VideoInfo) -> str:
    """10-bit where the input has more than 8 bits and the codec can; then yuv420p where the size
    is even (4:2:0 needs even sizes), else yuv444p (odd sizes keep every pixel), else what the
    codec offers (a palette for GIF)."""
    formats = [f.name for f in (codec.video_formats or [])]
    even = info.width % 2 == 0 and info.height % 2 == 0
    deep = [f for f in DEEP_FORMATS if even or f != "yuv420p10le"] if info.bit_depth > 8 else []
    preferred = deep + (["yuv420p"] if even else []) + ["yuv444p", "rgb24", "bgr0", "pal8"]
    if not formats:
        return preferred[0]
    chosen = next((name for name in preferred if name in formats), formats[0])
    if deep and chosen not in deep:
        log.warning(
            "%s encodes at most 8 bits: the %d-bit input is written with 8 (libx264 and libx265 "
            "keep 10)",
            codec.name,
            info.bit_depth,
        )
    return chosen


def _palette_frame(rgb: np.ndarray):
    """A ``pal8`` frame (GIF) with a palette of the frame's own 256 colours (Pillow's
    median cut)."""
    import av
    from PIL import Image

    if rgb.dtype == np.uint16:
        rgb = (rgb >> 8).astype(np.uint8)
    indexed = Image.fromarray(rgb).quantize(256)
    colours = np.array(indexed.getpalette()[: 3 * 256], np.uint8).reshape(-1, 3)
    palette = np.zeros((256, 4), np.uint8)
    palette[:, 0] = 255  # ARGB, opaque
    palette[: len(colours), 1:] = colours
    return av.VideoFrame.from_ndarray((np.asarray(indexed), palette), format="pal8")
