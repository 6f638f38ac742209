"""Tiny videos made with PyAV in tmp_path: moving bar, optional tone, cut, VFR, rotation, odd size."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest


def bar_frame(i: int, width: int, height: int, scene: int = 0) -> np.ndarray:
    """A bright bar moving 4 px per frame over a dark background (scene 1: other colours)."""
    img = np.full((height, width, 3), (20, 30, 40) if scene == 0 else (200, 60, 220), np.uint8)
    x = (i * 4) % max(1, width - 8)
    img[:, x : x + 8] = (250, 240, 10) if scene == 0 else (10, 250, 250)
    return img


def make_video(
    path: Path,
    count: int = 12,
    width: int = 64,
    height: int = 48,
    fps: int = 12,
    *,
    audio: bool = False,
    rotation: int = 0,
    pts: list[int] | None = None,
    cut_at: int | None = None,
    frames: list[np.ndarray] | None = None,
    tags: bool = False,
) -> Path:
    """Write an H.264 video (yuv444p if the size is odd); ``pts`` in 1/fps units (VFR if irregular)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"crf": "10"}
        if rotation:
            stream.set_display_rotation(rotation)
        if tags:  # BT.709 colour tags and 4:3 pixels
            codec = stream.codec_context
            codec.color_primaries = codec.color_trc = codec.colorspace = 1
            codec.sample_aspect_ratio = Fraction(4, 3)
        tone = container.add_stream("aac", rate=44100) if audio else None
        stamps = pts if pts is not None else list(range(count))
        for i, stamp in enumerate(stamps):
            image = (
                frames[i]
                if frames is not None
                else bar_frame(i, width, height, int(cut_at is not None and i >= cut_at))
            )
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = stamp
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if tone is not None:
            total = int(44100 * (stamps[-1] + 1) / fps)
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / 44100)).astype(np.float32)[
                None
            ]
            for start in range(0, total, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(wave[:, start : start + 1024]), format="flt", layout="mono"
                )
                chunk.sample_rate, chunk.pts = 44100, start
                container.mux(tone.encode(chunk))
            container.mux(tone.encode(None))
    return path


def decode(path: Path) -> tuple[list[float], list[np.ndarray], dict]:
    """Times (s), RGB frames and facts (streams, rotation, size) of a video."""
    import av

    with av.open(str(path)) as container:
        facts = {"streams": [s.type for s in container.streams], "audio": None}
        if container.streams.audio:
            audio = container.streams.audio[0]
            packets = [p for p in container.demux(audio) if p.size]
            facts["audio"] = (
                len(packets),
                sum(p.size for p in packets),
                float(sum(p.duration for p in packets) * audio.time_base),
            )
            container.seek(0)
        times, images = [], []
        for frame in container.decode(video=0):
            times.append(float(frame.time))
            images.append(frame.to_ndarray(format="rgb24"))
            facts["rotation"] = frame.rotation
        facts["size"] = (frame.width, frame.height)
        codec = container.streams.video[0].codec_context
        facts["tags"] = (
            codec.color_primaries,
            codec.color_trc,
            codec.colorspace,
            codec.sample_aspect_ratio,
        )
    return times, images, facts


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", audio=True)
