"""``--cluster``: the segments of a segmented run (``emavfi.video.segments``) made as Ray tasks.

The driver opens the work folder as a local run would (finished segments are not made again),
then sends one task per missing segment. A task runs the same pipeline with that one segment to
make (it reads the input from the start, as a resumed run does, so that its frames are those of
a whole run), in a folder of its own, and returns the finished segment file's bytes; the driver
puts them into the work folder as they come back and joins them as a local run does. A task whose
worker dies is retried (``MAX_RETRIES``). The input's path must be readable by every node (shared
storage); the model is built in each worker.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from emavfi.errors import EmavfiError
from emavfi.tempfiles import atomic_write_bytes

log = logging.getLogger(__name__)

MAX_RETRIES = 3
INSTALL_HINT = 'pip install "emavfi[cluster]"'


def require_ray() -> None:
    """Raise one line when Ray (the ``cluster`` extra) is not installed."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise EmavfiError(f"--cluster needs Ray: {INSTALL_HINT}") from None


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` ("auto": the one started on this machine with
    ``ray start``; ``ray://HOST:PORT``: a remote head), unless this process already has."""
    require_ray()
    import ray

    if ray.is_initialized():
        return
    try:
        ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise EmavfiError(f"cannot reach a Ray cluster at {address}: {exc}") from None


def _make_segment(
    input_path: str, index: int, suffix: str, options, make_interpolator, interpolate_video
):
    """Ray task: ``(bytes of segment index's finished file or None if no output frame falls in
    it, the task's VideoResult)``; ``interpolate_video`` is the pipeline's (passed in: the
    pipeline imports this module)."""
    import ray
    import torch

    from emavfi.video.segments import work_folder
    from emavfi.video.threads import thread_budget

    if options.threads is None:  # the task's CPUs, not the node's: tasks share a node
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        options = dataclasses.replace(options, threads=max(1, round(cpus)))

    def make_sized_interpolator():
        interpolator = make_interpolator()
        torch.set_num_threads(thread_budget(options.threads).torch)
        return interpolator

    with tempfile.TemporaryDirectory(prefix="emavfi-segment-") as folder:
        output = Path(folder) / f"out{suffix}"
        result = interpolate_video(
            input_path, output, options=options, make_interpolator=make_sized_interpolator
        )
        segment = work_folder(output) / f"segment_{index:05d}{suffix}"
        return (segment.read_bytes() if segment.exists() else None), result


def task_options(options, info, sink, index: int):
    """A task's options: only segment ``index`` made, and the input read no further than a
    second past its end (the frames after it are not needed)."""
    end = sink.start + (index + 1) * sink.seconds + 1 - info.start
    return dataclasses.replace(
        options,
        cluster=None,
        only_segments=frozenset({index}),
        progress=False,
        on_progress=None,
        resume=None,
        end=end if options.end is None else min(end, options.end),
    )


def make_segments_on_ray(
    info, sink, options, make_interpolator: Callable, interpolate_video: Callable
) -> list:
    """Make the segments ``sink`` (a SegmentedSink) lacks on the cluster, each task running
    ``interpolate_video``, then join them; returns the tasks' VideoResults."""
    connect(options.cluster)
    import ray
    from tqdm import tqdm

    todo = [k for k in range(sink.total) if k not in sink.finished]
    task = ray.remote(max_retries=MAX_RETRIES)(_make_segment)
    source, suffix = str(info.path.resolve()), sink.output.suffix
    pending = {
        task.remote(
            source,
            k,
            suffix,
            task_options(options, info, sink, k),
            make_interpolator,
            interpolate_video,
        ): k
        for k in todo
    }
    results = []
    done = sink.total - len(todo)
    with tqdm(total=sink.total, initial=done, unit="segment", disable=not options.progress) as bar:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(ready[0])
            try:
                data, result = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:
                for ref in pending:
                    ray.cancel(ref)
                cause = getattr(exc, "cause", None) or exc
                reason = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
                if not isinstance(cause, EmavfiError):
                    reason = f"{type(cause).__name__}: {reason}"
                raise EmavfiError(f"segment {index + 1} failed on the cluster: {reason}") from None
            if data is not None:
                atomic_write_bytes(sink.path(index), data)
                sink.finished.add(index)
            results.append(result)
            bar.update(1)
    sink.commit()
    return results
