"""Video interpolation: decode -> (cuts, duplicates, timeline) -> batched model -> encode.

Three threads overlap: the reader decodes, the main thread runs the model on batches of frame
pairs, the writer encodes and muxes. Memory stays bounded (a few frames per queue and one model
call of at most ``batch_size`` pairs and ``MAX_TIMESTEPS_PER_CALL`` timesteps), whatever the
video's length or the number of frames asked for: output times are generated as they are
needed, never listed in advance. Output is atomic (see ``emavfi.video.writer``).

Frames are uint8, or uint16 for inputs of more than 8 bits; the model sees float [0, 1] either way
and its frames go back to the input's depth.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import time as clock
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from emavfi.errors import EmavfiError
from emavfi.imageio import frames_to_tensor, tensor_to_frames
from emavfi.video import reader as video_reader
from emavfi.video import segments
from emavfi.video import writer as video_writer
from emavfi.video.scenes import DEFAULT_CUT_THRESHOLD, SceneCutDetector, is_duplicate
from emavfi.video.threads import BackgroundConsumer, thread_budget
from emavfi.video.timeline import (
    MAX_FPS,
    OutputFrame,
    Timeline,
    frames_between,
    hold,
    resolve_mode,
)

log = logging.getLogger(__name__)

MAX_DUPLICATE_RUN = 2  # longer runs of identical frames are a real pause, kept as such
MAX_TIMESTEPS_PER_CALL = 16  # a pair needing more (--factor 1000) is split into several calls
MANY_FRAMES_PER_INPUT = 100  # from this many output frames per input frame, say how many
ETA_AFTER = 8  # frames done before the progress bar shows a time left (the first are slow)
MIN_TIME_BASE = Fraction(1, 10**9)  # nanoseconds: what MP4's 32-bit timescale still holds
# Options that do not change the frames (a work folder made with others is still resumed)
RUN_ONLY_OPTIONS = (
    "batch_size",
    "progress",
    "overwrite",
    "on_progress",
    "threads",
    "resume",
    "cluster",
    "only_segments",
)


@dataclass
class VideoOptions:
    """How to interpolate (the flags of ``emavfi interpolate``)."""

    fps: float | Fraction | None = None
    factor: int | None = None
    frame_interval: int = 1
    scene_detect: bool = True
    scene_threshold: float = DEFAULT_CUT_THRESHOLD
    dedup: bool = True
    codec: str | None = None  # None: libx264, or the container's default (VP9 for .webm)
    crf: int | None = video_writer.DEFAULT_CRF
    batch_size: int = 4
    input_fps: float | None = None
    progress: bool = True
    overwrite: bool = False
    allow_truncated: bool = False
    start: Fraction | None = None  # --start / --end: the span kept (s); the output starts at 0
    end: Fraction | None = None
    threads: int | None = None  # --threads: shared by the stages (see thread_budget)
    # Segmented output (emavfi.video.segments): segments of this many seconds, resumed (None:
    # when the work folder is for the same input and settings; True: or refuse; False: never)
    segment_seconds: float | None = None
    resume: bool | None = None
    model: str = ""  # what makes the frames (a work folder is resumed only for the same)
    # --cluster: a Ray address ("auto", "ray://HOST:PORT") that makes the segments; only: the
    # segments this process makes (a cluster task)
    cluster: str | None = None
    only_segments: frozenset[int] | None = None
    # Called as on_progress(done, total) at the start and after each output frame; raising from it
    # stops the run as an error would, leaving nothing behind (the web UI's cancel button).
    on_progress: Callable[[int, int], None] | None = None


@dataclass
class VideoResult:
    """What was done: output path, frames in and out, cuts and duplicates found, seconds;
    ``truncated``: why the input is incomplete (it was read as far as it goes), or None."""

    output: Path
    input_frames: int
    output_frames: int
    synthesised: int
    cuts: int
    duplicates: int
    seconds: float
    truncated: str | None = None


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
    A truncated input raises unless ``options.allow_truncated`` (then: one warning).
    """
    options = options or VideoOptions()
    info, sink, timeline = prepare(input_path, output_path, options)
    started = clock.perf_counter()
    if options.cluster is not None:
        from emavfi.video.cluster import make_segments_on_ray

        results = make_segments_on_ray(
            info, sink, options, make_interpolator or (lambda: interpolator), interpolate_video
        )
        return VideoResult(
            sink.output,
            max((r.input_frames for r in results), default=0),
            sink.count,
            sum(r.synthesised for r in results),
            max((r.cuts for r in results), default=0),
            max((r.duplicates for r in results), default=0),
            clock.perf_counter() - started,
        )
    frames = writer = None
    try:
        if interpolator is None:
            interpolator = make_interpolator()
        frames = video_reader.read_frames(
            info, options.frame_interval, threads=thread_budget(options.threads).decoder
        )
        writer = BackgroundConsumer(sink.write, maxsize=2 * options.batch_size + 4)
        kept = within(frames, timeline.start, timeline.end)
        with torch.inference_mode():
            stats = _run(info, timeline, kept, writer, interpolator, options, sink)
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
    if info.truncated:
        log.warning(
            "%s is truncated (%s): read %d frames", info.path.name, info.truncated, stats["read"]
        )
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
        info.truncated,
    )


def check_options(options: VideoOptions) -> tuple[Fraction | None, int | None]:
    """Refuse impossible settings with one line naming the flag; returns ``resolve_mode``'s
    ``(fps, factor)``."""
    fps, factor = resolve_mode(options.fps, options.factor)
    if options.frame_interval < 1:
        raise EmavfiError(f"--frame-interval must be 1 or more, got {options.frame_interval}")
    if options.batch_size < 1:
        raise EmavfiError(f"--batch-size must be 1 or more, got {options.batch_size}")
    if options.crf is not None and not 0 <= options.crf <= 63:
        raise EmavfiError(f"--crf must be between 0 and 63, got {options.crf}")
    if not 0 < options.scene_threshold <= 255:  # nan fails too
        raise EmavfiError(
            f"--scene-threshold must be above 0 and at most 255, got {options.scene_threshold}"
        )
    seconds = options.segment_seconds
    if options.cluster is not None and seconds is None:
        raise EmavfiError("--cluster makes the segments of --segment SECONDS: give both")
    if options.cluster is not None:
        from emavfi.video.cluster import require_ray

        require_ray()
    if seconds is not None and not seconds >= segments.MIN_SECONDS:
        raise EmavfiError(f"--segment must be at least {segments.MIN_SECONDS:g} s, got {seconds}")
    if options.threads is not None:
        thread_budget(options.threads)  # refuses fewer than one
    input_fps = options.input_fps
    if input_fps is not None and not 0 < input_fps <= MAX_FPS:
        raise EmavfiError(f"--input-fps must be above 0 and at most {MAX_FPS:g}, got {input_fps}")
    return fps, factor


def prepare(input_path, output_path, options: VideoOptions):
    """Validate everything and open the (temporary) output: ``(info, sink, timeline)``."""
    fps, factor = check_options(options)
    output_path = video_writer.check_output(output_path, input_path, options.overwrite)
    info = video_reader.probe(input_path, options.input_fps)
    if info.truncated and not options.allow_truncated:
        raise EmavfiError(
            f"{info.path} is truncated: {info.truncated} (--allow-truncated interpolates the "
            "frames it holds)"
        )
    timeline = Timeline(*trimmed_span(info, options), fps=fps, factor=factor)
    _warn_if_many(info, timeline, options)
    if video_writer.is_sequence_output(output_path):
        if options.segment_seconds is not None:
            raise EmavfiError("--segment writes a video file, not a folder of images")
        return info, video_writer.SequenceSink(output_path), timeline
    codec = video_writer.check_codec(options.codec)
    if fps is not None:
        rate, time_base = fps, 1 / fps
    else:  # factor: times are input timestamps split in (factor + 1) steps
        rate = info.rate * (factor + 1) / options.frame_interval
        time_base = info.time_base / (factor + 1)
    time_base = max(time_base, MIN_TIME_BASE)  # output times are rounded to the nanosecond

    def make_sink(path: Path, template=None, *, segment: bool = False) -> video_writer.VideoSink:
        return video_writer.VideoSink(
            path,
            info,
            time_base=time_base,
            rate=rate,
            codec=codec,
            crf=options.crf,
            span=(timeline.start, timeline.end),
            threads=thread_budget(options.threads).encoder,
            copy_streams=not segment,
            b_frames=not segment,
            template=template,
        )

    if options.segment_seconds is None:
        return info, make_sink(output_path), timeline
    folder, finished = segments.open_work_folder(
        output_path, segments.run_key(info.path, _settings(options)), options.resume
    )
    sink = segments.SegmentedSink(
        output_path,
        folder,
        timeline.start,
        timeline.end,
        options.segment_seconds,
        finished,
        lambda path, template: make_sink(path, template, segment=template is None),
    )
    if options.only_segments is not None:
        sink.only = set(options.only_segments)
    return info, sink, timeline


def _settings(options: VideoOptions) -> dict:
    """What a segment's frames depend on (a work folder is resumed only for the same)."""
    fields = dataclasses.asdict(options)
    kept = {k: v for k, v in fields.items() if k not in RUN_ONLY_OPTIONS}
    return json.loads(json.dumps(kept, default=str))


def trimmed_span(info, options: VideoOptions) -> tuple[Fraction, Fraction]:
    """The input span kept: ``[--start, --end)`` within the video's own (an --end past the end
    is the end); a span that is empty or starts after the video raises EmavfiError."""
    start, end = info.start, info.end
    if options.start is not None:
        if options.start >= info.end - info.start:
            raise EmavfiError(
                f"--start {float(options.start):g} s is past the end of {info.path.name} "
                f"({float(info.end - info.start):g} s)"
            )
        start = info.start + options.start
    if options.end is not None:
        if options.end <= (options.start or 0):
            raise EmavfiError(
                f"--end {float(options.end):g} s is not after --start {float(options.start or 0):g} s"
            )
        end = min(info.end, info.start + options.end)
    return start, end


def within(frames: Iterable, start: Fraction, end: Fraction) -> Iterator:
    """The decoded frames that a span needs: from the last one at or before ``start`` (the first
    output times may lie between it and the next) to the first one at or after ``end``."""
    before = None
    for item in frames:
        if item[1] <= start:
            before = item
            continue
        if before is not None:
            yield before
            before = None
        yield item
        if item[1] >= end:
            return
    if before is not None:
        yield before


def _warn_if_many(info, timeline: Timeline, options: VideoOptions) -> None:
    kept = -(-info.frames // options.frame_interval)
    total = _total(info, timeline, options)
    if total >= MANY_FRAMES_PER_INPUT * kept:
        flag = "--factor" if timeline.fps is None else "--fps"
        log.warning(
            "%s makes %s output frames from %d input frames: this takes long; frames are "
            "written as they are made",
            flag,
            f"{total:,}",
            kept,
        )


def _total(info, timeline: Timeline, options: VideoOptions) -> int:
    if timeline.total is not None:
        return timeline.total
    share = (timeline.end - timeline.start) / (info.end - info.start)  # of a trimmed video
    return round(-(-info.frames // options.frame_interval) * (timeline.factor + 1) * share)


def _run(
    info, timeline: Timeline, frames, writer, interpolator, options: VideoOptions, sink=None
) -> dict[str, int]:
    """The main loop over decoded frames; returns counters."""
    progress = _Progress(
        _total(info, timeline, options), options.progress, options.on_progress, segments_of(sink)
    )
    batcher = _Batcher(interpolator, options.batch_size, lambda item: progress.emit(writer, item))
    finished = getattr(sink, "is_finished", None)  # segments of an earlier run

    def to_make(plan: Iterable[OutputFrame]) -> Iterator[OutputFrame]:
        for frame in plan:
            if finished is not None and finished(frame.time):
                progress.skip()
            else:
                yield frame

    detector = (
        SceneCutDetector(options.scene_threshold, float(info.rate))
        if options.scene_detect
        else None
    )
    stats = {"input": 0, "read": 0, "cuts": 0, "duplicates": 0}
    anchor = previous_time = None
    intervals: list[tuple[Fraction, Fraction]] = []  # input intervals since the anchor
    duplicate_run = 0
    for index, time, rgb in frames:
        stats["input"] += 1
        stats["read"] = index + 1
        cut = detector.is_cut(rgb) if detector else False
        if anchor is None:
            anchor, previous_time = (index, time, rgb), time
            continue
        intervals.append((previous_time, time))
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
        times = _output_times(timeline, intervals)
        plan = frames_between(times, anchor[0], anchor[1], index, time, cut=cut)
        batcher.add({anchor[0]: anchor[2], index: rgb}, to_make(plan))
        anchor, intervals = (index, time, rgb), []
    if anchor is None:
        raise EmavfiError(f"{info.path} has no decodable frames")
    intervals.append((previous_time, timeline.end))
    batcher.add(
        {anchor[0]: anchor[2]}, to_make(hold(_output_times(timeline, intervals), anchor[0]))
    )
    batcher.flush()
    progress.close()
    stats["synthesised"] = batcher.synthesised
    return stats


def segments_of(sink) -> Callable[[Fraction], str] | None:
    """``segment k/N`` for an output time, when ``sink`` writes segments."""
    if not isinstance(sink, segments.SegmentedSink):
        return None
    return lambda time: f"segment {sink.index(time) + 1}/{sink.total}"


def _output_times(timeline: Timeline, intervals: list[tuple[Fraction, Fraction]]) -> Iterator:
    """The output times of consecutive input intervals, generated one by one."""
    return itertools.chain.from_iterable(timeline.times_between(a, b) for a, b in intervals)


class _Progress:
    """tqdm bar of output frames; the time left is shown once a few frames are done (the first
    ones include the model's warm-up, so an early estimate is far off). ``report(done, total)``
    (``VideoOptions.on_progress``) is called at the start and after each frame written."""

    def __init__(
        self,
        total: int,
        enabled: bool,
        report: Callable[[int, int], None] | None = None,
        segment: Callable[[Fraction], str] | None = None,
    ):
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            unit="frame",
            disable=not enabled,
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]",
        )
        self.total, self.done, self.segment = total, 0, segment
        self.report = report or (lambda done, total: None)
        self.report(self.done, self.total)

    def emit(self, writer, item) -> None:
        writer.put(item)
        if self.segment is not None:
            self.bar.set_postfix_str(self.segment(item[0]), refresh=False)
        self.bar.update(1)
        if self.bar.n == ETA_AFTER:
            self.bar.bar_format = None  # tqdm's default: with the time left
        self.done += 1
        self.report(self.done, self.total)

    def skip(self) -> None:
        """A frame an earlier run made (a finished segment): counted, not in the rate."""
        if not self.bar.disable:
            self.bar.n += 1
            self.bar.last_print_n += 1
        self.done += 1

    def close(self) -> None:
        self.bar.close()


class _Batcher:
    """Groups consecutive frame pairs that need the same timesteps into one model call.

    A pair's plan is consumed in chunks of at most ``MAX_TIMESTEPS_PER_CALL`` timesteps, so a
    pair that needs a thousand frames is made (and written) a chunk at a time.
    """

    def __init__(self, interpolator: Callable, batch_size: int, emit: Callable):
        self.interpolator, self.batch_size, self.emit = interpolator, max(1, batch_size), emit
        self.jobs: list[tuple[dict[int, np.ndarray], list[OutputFrame]]] = []
        self.key: tuple[float, ...] | None = None
        self.synthesised = 0

    def add(self, sources: dict[int, np.ndarray], plan: Iterable[OutputFrame]) -> None:
        for chunk in _chunks(plan, MAX_TIMESTEPS_PER_CALL):
            key = tuple(sorted({f.t for f in chunk if f.t > 0}))
            if self.jobs and (key != self.key or len(self.jobs) >= self.batch_size):
                self.flush()
            if not key:
                self._emit_job(sources, chunk, {})
                continue
            self.jobs.append((sources, chunk))
            self.key = key

    def flush(self) -> None:
        if not self.jobs:
            return
        pairs = [sorted(sources) for sources, _ in self.jobs]
        depth = self.jobs[0][0][pairs[0][0]].dtype
        img0 = frames_to_tensor(np.stack([self.jobs[k][0][p[0]] for k, p in enumerate(pairs)]))
        img1 = frames_to_tensor(np.stack([self.jobs[k][0][p[-1]] for k, p in enumerate(pairs)]))
        predictions = self.interpolator(img0, img1, list(self.key))
        by_t = {t: tensor_to_frames(pred, depth) for t, pred in zip(self.key, predictions)}
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


def _chunks(plan: Iterable[OutputFrame], max_timesteps: int) -> Iterator[list[OutputFrame]]:
    """Consecutive runs of ``plan`` that need at most ``max_timesteps`` distinct t > 0."""
    chunk: list[OutputFrame] = []
    timesteps: set[float] = set()
    for frame in plan:
        if frame.t > 0 and frame.t not in timesteps and len(timesteps) == max_timesteps:
            yield chunk
            chunk, timesteps = [], set()
        chunk.append(frame)
        if frame.t > 0:
            timesteps.add(frame.t)
    if chunk:
        yield chunk
