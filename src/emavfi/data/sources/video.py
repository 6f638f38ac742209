"""Video files as a source: decoded by ``emavfi.video.reader`` (every frame, in display order,
raw streams and disordered timestamps included), split at scene cuts by
``emavfi.video.scenes.SceneCutDetector``, and cut into windows of inputs ``gap`` frames apart
(``gap=2``: skip-one triplets) inside each scene.

Frames are addressed by their index in display order (`VideoFrameRef`). Decoding is lazy:
each process keeps a few open decoders and recent frames, so reading the windows in order
decodes each frame about once; going backwards reopens the file (clips are short).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from emavfi.data.sources.base import FrameWindow, VideoFrameRef, gap_windows, register_loader
from emavfi.errors import EmavfiError
from emavfi.video.reader import VideoInfo, decode_frames, probe
from emavfi.video.scenes import SceneCutDetector

logger = logging.getLogger(__name__)

MAX_OPEN_DECODERS = 2
MAX_CACHED_FRAMES = 32
DETECT_WIDTH = 256  # the content detector works on small frames: faster, and cuts are coarse


@dataclass(frozen=True)
class VideoScenes:
    """What one decoding pass learns about a video: its length, rate and scene cuts."""

    frame_count: int
    fps: float
    cuts: tuple[int, ...]  # indices of the first frame of every scene after the first


@functools.lru_cache(maxsize=16)
def _video_info(path_str: str, mtime: float) -> VideoInfo:
    """``probe`` once per file and process (a probe reads the whole file)."""
    info = probe(Path(path_str))
    if info.truncated:
        logger.warning("%s is truncated (%s): using the frames it holds", path_str, info.truncated)
    return info


def _info(path: Path) -> VideoInfo:
    path = Path(path)
    if not path.is_file():
        raise EmavfiError(f"video not found: {path}")
    return _video_info(str(path.resolve()), path.stat().st_mtime)


def iter_video_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of the first video stream, in display order, as ``HxWx3`` uint8 RGB."""
    with contextlib.closing(decode_frames(_info(path), eight_bit=True)) as frames:
        for _, _, rgb in frames:
            yield rgb


def video_fps(path: Path) -> float:
    """The frame rate of the first video stream (a raw stream's own, else 25)."""
    return float(_info(path).rate)


@functools.lru_cache(maxsize=16)
def _probe(path_str: str, mtime: float, threshold: float, min_scene_len: int) -> VideoScenes:
    path = Path(path_str)
    fps = video_fps(path)
    detector = SceneCutDetector(threshold, fps, min_scene_len, width=DETECT_WIDTH)
    cuts, count = [], 0
    for count, frame in enumerate(iter_video_frames(path), start=1):
        if detector.is_cut(frame):
            cuts.append(count - 1)
    return VideoScenes(count, fps, tuple(cuts))


def probe_video(path: Path, threshold: float = 27.0, min_scene_len: int = 3) -> VideoScenes:
    """Decode ``path`` once: frame count, frame rate and scene cuts (cached per file)."""
    path = Path(path)
    if not path.is_file():
        raise EmavfiError(f"video not found: {path}")
    return _probe(str(path.resolve()), path.stat().st_mtime, float(threshold), int(min_scene_len))


def open_video(
    path: Path, gap: int = 2, stride: int = 1, threshold: float = 27.0, min_scene_len: int = 3
) -> list[FrameWindow]:
    """Windows inside each scene of the video (no window spans a scene cut)."""
    path = Path(path)
    info = probe_video(path, threshold, min_scene_len)
    bounds = [0, *info.cuts, info.frame_count]
    windows: list[FrameWindow] = []
    for scene, (start, stop) in enumerate(pairwise(bounds)):
        frames = [VideoFrameRef(path, index) for index in range(start, stop)]
        scene_windows = gap_windows(f"{path.stem}/scene{scene:03d}", frames, gap, stride)
        windows += scene_windows
    if not windows:
        raise EmavfiError(
            f"video too short for windows of gap {gap}: {path} ({info.frame_count} frames)"
        )
    return windows


class _SequentialDecoder:
    """An open video that hands out frames by index, decoding forward only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._frames = iter_video_frames(path)
        self.next_index = 0

    def get(self, index: int) -> np.ndarray:
        for frame in self._frames:
            self.next_index += 1
            if self.next_index - 1 == index:
                return frame
        raise EmavfiError(f"video {self.path} has no frame {index} (it has {self.next_index})")

    def close(self) -> None:
        self._frames.close()


class _DecoderCache:
    """Per-process bounded cache of open decoders and recently decoded frames."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.decoders: OrderedDict[Path, _SequentialDecoder] = OrderedDict()
        self.frames: OrderedDict[VideoFrameRef, np.ndarray] = OrderedDict()

    def load(self, ref: VideoFrameRef) -> np.ndarray:
        if ref in self.frames:
            self.frames.move_to_end(ref)
            return self.frames[ref]
        decoder = self.decoders.pop(ref.path, None)
        if decoder is None or decoder.next_index > ref.index:
            if decoder is not None:
                decoder.close()
            decoder = _SequentialDecoder(ref.path)
        self.decoders[ref.path] = decoder
        while len(self.decoders) > MAX_OPEN_DECODERS:
            self.decoders.popitem(last=False)[1].close()
        frame = decoder.get(ref.index)
        self.frames[ref] = frame
        while len(self.frames) > MAX_CACHED_FRAMES:
            self.frames.popitem(last=False)
        return frame


_cache: _DecoderCache | None = None


def load_video_frame(ref: VideoFrameRef) -> np.ndarray:
    """Frame ``ref.index`` of ``ref.path`` as ``HxWx3`` uint8 RGB (a copy the caller may edit)."""
    global _cache
    if _cache is None or _cache.pid != os.getpid():  # a forked DataLoader worker starts afresh
        _cache = _DecoderCache()
    if not Path(ref.path).is_file():
        raise EmavfiError(f"video not found: {ref.path}")
    return _cache.load(ref).copy()


register_loader(VideoFrameRef, load_video_frame)
