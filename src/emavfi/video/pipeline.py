"""Video interpolation: decode -> (cuts, duplicates, timeline) -> batched model -> encode.

Three threads overlap: the reader decodes, the main thread runs the model on batches of frame
pairs, the writer encodes and muxes. Memory stays bounded (a few frames per queue and one batch
of pairs), whatever the video's length. Output is atomic (see ``emavfi.video.writer``).
"""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from emavfi.errors import EmavfiError
from emavfi.video import reader as video_reader
from emavfi.video import writer as video_writer
from emavfi.video.scenes import DEFAULT_CUT_THRESHOLD, SceneCutDetector, is_duplicate
from emavfi.video.threads import BackgroundConsumer
from emavfi.video.timeline import OutputFrame, Timeline, frames_between, hold, resolve_mode

log = logging.getLogger(__name__)

MAX_DUPLICATE_RUN = 2  # longer runs of identical frames are a real pause, kept as such


@dataclass
class VideoOptions:
    """How to interpolate (the flags of ``emavfi interpolate``)."""

    fps: float | Fraction | None = None
    factor: int | None = None
    frame_interval: int = 1
    scene_detect: bool = True
    scene_threshold: float = DEFAULT_CUT_THRESHOLD
    dedup: bool = True
    codec: str = video_writer.DEFAULT_CODEC
    crf: int | None = video_writer.DEFAULT_CRF
    batch_size: int = 4
    input_fps: float | None = None
    progress: bool = True
    # Called as on_progress(done, total) at the start and after each output frame; raising from it
    # stops the run as an error would, leaving nothing behind (the web UI's cancel button).
    on_progress: Callable[[int, int], None] | None = None


@dataclass
class VideoResult:
    """What was done: output path, frames in and out, cuts and duplicates found, seconds."""

    output: Path
    input_frames: int
    output_frames: int
    synthesised: int
    cuts: int
    duplicates: int
    seconds: float


def interpolate_video(
    input_path: str | Path,
    output_path: str | Path,
    interpolator: Callable | None = None,
    options: VideoOptions | None = None,
    *,
    make_interpolator: Callable[[], Callable] | None = None,
) -> VideoResult:
    """Interpolate ``input_path`` (video file or image folder) into ``output_path``.

    ``interpolator(img0, img1, timesteps)`` takes ``(B, 3, H, W)`` RGB [0, 1] tensors and returns
    one such tensor per timestep (``emavfi.Interpolator`` does). ``make_interpolator`` instead
    builds it after the input and output are checked (so bad paths fail before a model loads).
    Bad input raises EmavfiError; on any error or Ctrl-C nothing is left at ``output_path``.
    """
    options = options or VideoOptions()
    info, sink, timeline = prepare(input_path, output_path, options)
    started = clock.perf_counter()
    frames = writer = None
    try:
        if interpolator is None:
            interpolator = make_interpolator()
        frames = video_reader.read_frames(info, options.frame_interval)
        writer = BackgroundConsumer(sink.write, maxsize=2 * options.batch_size + 4)
        with torch.inference_mode():
            stats = _run(info, timeline, frames, writer, interpolator, options)
        writer.finish()
        sink.commit()
    except BaseException:
        if frames is not None:
            frames.close()
        if writer is not None:
            writer.abort()
        sink.abort()
        raise
    seconds = clock.perf_counter() - started
    log.debug(
        "wrote %s: %d frames from %d in %.1f s", output_path, sink.count, stats["input"], seconds
    )
    return VideoResult(
        Path(output_path),
        stats["input"],
        sink.count,
        stats["synthesised"],
        stats["cuts"],
        stats["duplicates"],
        seconds,
    )


def prepare(input_path, output_path, options: VideoOptions):
    """Validate everything and open the (temporary) output: ``(info, sink, timeline)``."""
    fps, factor = resolve_mode(options.fps, options.factor)
    if options.frame_interval < 1:
        raise EmavfiError(f"the frame interval must be 1 or more, got {options.frame_interval}")
    if options.crf is not None and not 0 <= options.crf <= 63:
        raise EmavfiError(f"crf must be between 0 and 63, got {options.crf}")
    output_path = video_writer.check_output(output_path, input_path)
    info = video_reader.probe(input_path, options.input_fps)
    timeline = Timeline(info.start, info.end, fps=fps, factor=factor)
    if video_writer.is_sequence_output(output_path):
        return info, video_writer.SequenceSink(output_path), timeline
    codec = video_writer.check_codec(options.codec)
    if fps is not None:
        rate, time_base = fps, 1 / fps
    else:  # factor: times are input timestamps split in (factor + 1) steps
        rate = info.rate * (factor + 1) / options.frame_interval
        time_base = info.time_base / (factor + 1)
    sink = video_writer.VideoSink(
        output_path, info, time_base=time_base, rate=rate, codec=codec, crf=options.crf
    )
    return info, sink, timeline


def _run(
    info, timeline: Timeline, frames, writer, interpolator, options: VideoOptions
) -> dict[str, int]:
    """The main loop over decoded frames; returns counters."""
    from tqdm import tqdm

    total = timeline.total or -(-info.frames // options.frame_interval) * (timeline.factor + 1)
    bar = tqdm(total=total, unit="frame", disable=not options.progress, dynamic_ncols=True)
    report = options.on_progress or (lambda done, total: None)
    done = 0
    report(done, total)

    def emit(item) -> None:
        nonlocal done
        writer.put(item)
        bar.update(1)
        done += 1
        report(done, total)

    batcher = _Batcher(interpolator, options.batch_size, emit)
    detector = (
        SceneCutDetector(options.scene_threshold, float(info.rate))
        if options.scene_detect
        else None
    )
    stats = {"input": 0, "cuts": 0, "duplicates": 0}
    anchor = previous_time = None
    pending: list[Fraction] = []
    duplicate_run = 0
    for index, time, rgb in frames:
        stats["input"] += 1
        cut = detector.is_cut(rgb) if detector else False
        if anchor is None:
            anchor, previous_time = (index, time, rgb), time
            continue
        pending += timeline.times_between(previous_time, time)
        previous_time = time
        if (
            not cut
            and options.dedup
            and duplicate_run < MAX_DUPLICATE_RUN
            and is_duplicate(anchor[2], rgb)
        ):
            duplicate_run += 1
            stats["duplicates"] += 1
            continue  # its output times wait for the next distinct frame
        duplicate_run = 0
        stats["cuts"] += cut
        plan = frames_between(pending, anchor[0], anchor[1], index, time, cut=cut)
        batcher.add({anchor[0]: anchor[2], index: rgb}, plan)
        anchor, pending = (index, time, rgb), []
    if anchor is None:
        raise EmavfiError(f"{info.path} has no decodable frames")
    pending += timeline.times_between(previous_time, timeline.end)
    batcher.add({anchor[0]: anchor[2]}, hold(pending, anchor[0]))
    batcher.flush()
    bar.close()
    stats["synthesised"] = batcher.synthesised
    return stats


class _Batcher:
    """Groups consecutive frame pairs that need the same timesteps into one model call."""

    def __init__(self, interpolator: Callable, batch_size: int, emit: Callable):
        self.interpolator, self.batch_size, self.emit = interpolator, max(1, batch_size), emit
        self.jobs: list[tuple[dict[int, np.ndarray], list[OutputFrame]]] = []
        self.key: tuple[float, ...] | None = None
        self.synthesised = 0

    def add(self, sources: dict[int, np.ndarray], plan: list[OutputFrame]) -> None:
        key = tuple(sorted({f.t for f in plan if f.t > 0}))
        if self.jobs and (key != self.key or len(self.jobs) >= self.batch_size):
            self.flush()
        if not key:
            self._emit_job(sources, plan, {})
            return
        self.jobs.append((sources, plan))
        self.key = key

    def flush(self) -> None:
        if not self.jobs:
            return
        pairs = [sorted(sources) for sources, _ in self.jobs]
        img0 = _to_tensor([self.jobs[k][0][p[0]] for k, p in enumerate(pairs)])
        img1 = _to_tensor([self.jobs[k][0][p[-1]] for k, p in enumerate(pairs)])
        predictions = self.interpolator(img0, img1, list(self.key))
        by_t = {t: _to_uint8(pred) for t, pred in zip(self.key, predictions)}
        for k, (sources, plan) in enumerate(self.jobs):
            self._emit_job(sources, plan, {t: images[k] for t, images in by_t.items()})
        self.jobs, self.key = [], None

    def _emit_job(self, sources, plan: list[OutputFrame], made: dict[float, np.ndarray]) -> None:
        for frame in plan:
            if frame.t > 0:
                self.synthesised += 1
                self.emit((frame.time, made[frame.t]))
            else:
                self.emit((frame.time, sources[frame.index0]))


def _to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """(H, W, 3) uint8 RGB arrays -> (B, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255)


def _to_uint8(batch: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) float in [0, 1] -> (B, H, W, 3) uint8."""
    return (
        batch.detach().float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    )
