"""Segmented output: a long run kept as finished segment files, resumed after a crash, joined
without re-encoding.

Output times are cut into segments of ``seconds`` each: segment k holds the output frames shown
in ``[start + k x seconds, start + (k + 1) x seconds)``. The pipeline still reads and analyses
the video in one pass, so scene cuts, duplicates and the input frames each output frame is made
from are those of an unsegmented run; only the encoding is split, each segment into its own
file in the work folder ``OUTPUT.parts`` (made whole, then renamed into place; encoded without
B-frames so that decode times never go back across a join; each starts with a keyframe).

A later run with the same input, model and settings (``manifest.json`` in the work folder) finds
the finished segments and skips the model for their frames (it still decodes the video up to
them). The output is a remux of the segments' packets, timestamps unchanged, with the input's
audio and subtitles; the work folder is removed once it is written. A kill -9 loses at most the
segment being encoded.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from emavfi.errors import EmavfiError
from emavfi.tempfiles import atomic_write_text
from emavfi.video.writer import VideoSink

log = logging.getLogger(__name__)

WORK_SUFFIX = ".parts"
MANIFEST = "manifest.json"
MIN_SECONDS = 1.0


def work_folder(output: Path) -> Path:
    """The work folder of ``output``: beside it, ``NAME.SUFFIX.parts``."""
    return output.with_name(output.name + WORK_SUFFIX)


def run_key(input_path: Path, settings: dict) -> dict:
    """What a work folder is for: the input (path, size, modification time) and the settings."""
    stat = Path(input_path).stat()
    source = {"path": str(Path(input_path).resolve()), "size": stat.st_size}
    return {"input": {**source, "mtime_ns": stat.st_mtime_ns}, "settings": settings}


def open_work_folder(output: Path, key: dict, resume: bool | None) -> tuple[Path, set[int]]:
    """The work folder for ``key`` and the segments already finished in it.

    A folder made for the same key is resumed (``resume`` False: started over); one made for
    another is started over, unless ``resume`` is True (then EmavfiError: it cannot be).
    """
    folder = work_folder(output)
    finished: set[int] = set()
    if folder.is_dir():
        saved = _read_manifest(folder)
        if saved == key and resume is not False:
            finished = {int(p.stem.split("_")[1]) for p in folder.glob(f"segment_*{output.suffix}")}
            log.info("%s: resuming, %d segment(s) already done", folder.name, len(finished))
            return folder, finished
        if resume:
            raise EmavfiError(
                f"cannot resume {output}: {folder} was made from another input, model or settings"
            )
        log.warning("%s is from another run: starting over", folder)
        shutil.rmtree(folder)
    elif resume:
        log.info("nothing to resume in %s: starting", folder)
    folder.mkdir()
    atomic_write_text(folder / MANIFEST, json.dumps(key, indent=1, sort_keys=True))
    return folder, finished


def _read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


class SegmentedSink:
    """A sink (``write((time, rgb))``, ``commit``, ``abort``) that encodes each segment into its
    own finished file, then joins them into ``output``.

    Args:
        output: the final video. folder: its work folder (``open_work_folder``).
        start, end, seconds: the span of the output times and how long each segment is.
        finished: segments already in ``folder``: the pipeline skips their frames.
        make_sink: ``make_sink(path, template)`` -> a VideoSink encoding into ``path`` (template
            None) or copying the packets of ``template`` (the join).
    """

    def __init__(
        self,
        output: Path,
        folder: Path,
        start: Fraction,
        end: Fraction,
        seconds: float,
        finished: set[int],
        make_sink: Callable[..., VideoSink],
    ):
        self.output, self.folder, self.start = output, folder, start
        self.seconds = Fraction(str(seconds))
        self.total = max(1, math.ceil((end - start) / self.seconds))
        self.finished, self.make_sink = set(finished), make_sink
        self.only: set[int] | None = None  # a cluster task's segments: the others are skipped
        self.current: tuple[int, VideoSink] | None = None
        self.count = 0

    def index(self, time: Fraction) -> int:
        """The segment that shows output time ``time``."""
        return math.floor((time - self.start) / self.seconds)

    def is_finished(self, time: Fraction) -> bool:
        index = self.index(time)
        return index in self.finished or (self.only is not None and index not in self.only)

    def path(self, index: int) -> Path:
        return self.folder / f"segment_{index:05d}{self.output.suffix}"

    def write(self, item: tuple[Fraction, object]) -> None:
        index = self.index(item[0])
        if self.current is None or self.current[0] != index:
            self._finish()
            self.current = (index, self.make_sink(self.path(index), None))
        self.current[1].write(item)

    def _finish(self) -> None:
        if self.current is not None:
            index, sink = self.current
            sink.commit()
            self.finished.add(index)
            self.current = None

    def commit(self) -> None:
        """Finish the last segment, join all of them into the output, remove the work folder
        (a cluster task's segments stay where they are)."""
        import av

        self._finish()
        if self.only is not None:
            return
        paths = [self.path(index) for index in sorted(self.finished)]
        if not paths:
            raise EmavfiError(f"no segments to join in {self.folder}")
        with av.open(str(paths[0])) as first:
            sink = self.make_sink(self.output, first.streams.video[0])
        try:
            for path in paths:
                with av.open(str(path)) as segment:
                    for packet in segment.demux(segment.streams.video[0]):
                        if packet.size:
                            sink.write_packet(packet)
        except BaseException:
            sink.abort()
            raise
        sink.commit()
        self.count = sink.count
        shutil.rmtree(self.folder)

    def abort(self) -> None:
        """Throw away the segment being encoded; the finished ones stay for a later run."""
        if self.current is not None:
            self.current[1].abort()
            self.current = None
