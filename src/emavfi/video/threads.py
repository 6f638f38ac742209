"""Background producer and consumer threads with bounded queues, a sentinel and re-raised errors;
how many CPU threads each stage of a run gets.

The main thread runs the model; decoding and encoding overlap with it. Shutdown never polls
``queue.empty()``: the producer ends with a sentinel, the consumer is finished by one, both are
joined, and an exception in either thread is re-raised in the main thread.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from emavfi.errors import EmavfiError


@dataclass(frozen=True)
class ThreadBudget:
    """CPU threads for the three stages that run at once: the model (torch), decoder, encoder."""

    torch: int
    decoder: int
    encoder: int


def thread_budget(total: int | None = None) -> ThreadBudget:
    """Share ``total`` threads (default: the cores this process may use) between the stages so
    that together they ask for no more (from 3 up; each stage needs one): a quarter each, at
    least one, to the decoder and the encoder, the rest to the model, which does most of the work.
    Left alone, torch and FFmpeg each take every core, and the three stages fight over them."""
    if total is None:
        total = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if total < 1:
        raise EmavfiError(f"--threads must be 1 or more, got {total}")
    codec = max(1, total // 4)
    return ThreadBudget(torch=max(1, total - 2 * codec), decoder=codec, encoder=codec)


_SENTINEL = object()
_POLL_S = 0.1


class BackgroundProducer:
    """Run ``produce(emit)`` in a thread; iterate over what it emits (at most ``maxsize`` ahead)."""

    def __init__(
        self,
        produce: Callable[[Callable[[Any], None]], None],
        maxsize: int = 8,
        name: str = "reader",
    ):
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._produce = produce
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _emit(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue
        raise _Stopped

    def _run(self) -> None:
        try:
            self._produce(self._emit)
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's thread
            self._error = exc
        finally:
            while not self._stop.is_set():
                try:
                    self._queue.put(_SENTINEL, timeout=_POLL_S)
                    break
                except queue.Full:
                    continue

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _SENTINEL:
                self._thread.join()
                if self._error is not None:
                    raise self._error
                return
            yield item

    def close(self) -> None:
        """Stop the producer early (error or Ctrl-C in the main thread) and join it."""
        self._stop.set()
        self._thread.join()


class BackgroundConsumer:
    """Call ``consume(item)`` in a thread for every ``put`` item, in order."""

    def __init__(self, consume: Callable[[Any], None], maxsize: int = 8, name: str = "writer"):
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._abort = threading.Event()
        self._error: BaseException | None = None
        self._consume = consume
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _SENTINEL or self._abort.is_set():
                return
            if self._error is not None:
                continue  # drain until the sentinel so that put() never blocks forever
            try:
                self._consume(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised by put() / finish()
                self._error = exc

    def put(self, item: Any) -> None:
        """Queue ``item`` (blocks while the queue is full); re-raises the consumer's error."""
        if self._error is not None:
            raise self._error
        while True:
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                if self._error is not None or not self._thread.is_alive():
                    raise self._error or RuntimeError("the writer thread stopped")

    def finish(self) -> None:
        """Send the sentinel, wait until every item is consumed, re-raise the consumer's error."""
        self._queue.put(_SENTINEL)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Drop what is queued and stop the thread (used on errors and Ctrl-C)."""
        self._abort.set()
        try:
            self._queue.put_nowait(_SENTINEL)
        except queue.Full:
            pass
        self._thread.join()


class _Stopped(Exception):
    """Raised inside the producer when the consumer closed it early."""
