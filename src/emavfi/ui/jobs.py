"""One job at a time: a worker thread runs the submitted jobs in order, each can be cancelled.

Nothing here knows about the web page (it polls ``Job.status()``), so it is tested without one.
Each job writes into a folder of its own, removed when the job fails or is cancelled; a finished
job's folder stays (its result is being shown and downloaded) until its owner submits the next
job or the runner closes.
"""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emavfi.errors import EmavfiError

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


class Cancelled(Exception):
    """Raised inside a job's work (from ``Job.report``) once the job is cancelled."""


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of a job: ``state`` is one of queued/running/done/failed/cancelled.

    ``ahead``: jobs that run before this one (queued only); ``done``/``total``: output frames
    (``total`` None until known); ``eta_s``: seconds left, from the rate so far; ``error``: the
    one-line message of a failed job; ``result``: what the work returned.
    """

    state: str
    ahead: int = 0
    done: int = 0
    total: int | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    error: str | None = None
    result: Any = None


class Job:
    """One piece of work, ``work(job)``, writing into ``job.folder`` and calling ``job.report``."""

    def __init__(self, owner: str, folder: Path, work: Callable[[Job], Any]):
        self.owner, self.folder, self.work = owner, folder, work
        self.finished = threading.Event()
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._state, self._error, self._result = QUEUED, None, None
        self._done, self._total = 0, None
        self._started = self._counting_since = None

    def report(self, done: int, total: int) -> None:
        """Progress in output frames (the pipeline's ``on_progress``); raises once cancelled."""
        if self._cancel.is_set():
            raise Cancelled
        with self._lock:
            if self._counting_since is None:  # the model is loaded: the rate is measured from here
                self._counting_since = time.monotonic()
            self._done, self._total = done, total

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def status(self, ahead: int = 0) -> JobStatus:
        with self._lock:
            now = time.monotonic()
            elapsed = now - self._started if self._started else 0.0
            eta = None
            if self._state == RUNNING and self._done and self._total:
                rate = self._done / max(now - self._counting_since, 1e-6)
                eta = max(self._total - self._done, 0) / rate
            return JobStatus(
                self._state, ahead, self._done, self._total, elapsed, eta, self._error, self._result
            )

    def _set(self, state: str, error: str | None = None, result: Any = None) -> None:
        with self._lock:
            self._state, self._error, self._result = state, error, result
            if state == RUNNING:
                self._started = time.monotonic()


class JobRunner:
    """Runs jobs one after another in a worker thread; each owner has at most one job waiting
    or running. Job folders are made under ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending: list[Job] = []  # queued and running, in order
        self._latest: dict[str, Job] = {}
        self._thread = threading.Thread(target=self._loop, name="emavfi-jobs", daemon=True)
        self._thread.start()

    def submit(self, owner: str, work: Callable[[Job], Any]) -> Job:
        """Queue ``work`` for ``owner``; the owner's previous finished job's files are removed."""
        with self._lock:
            previous = self._latest.get(owner)
            if previous is not None and not previous.finished.is_set():
                raise EmavfiError("a job of yours is already waiting or running; cancel it first")
            if previous is not None:
                shutil.rmtree(previous.folder, ignore_errors=True)
            job = Job(owner, Path(tempfile.mkdtemp(prefix="job-", dir=self.root)), work)
            self._latest[owner] = job
            self._pending.append(job)
        self._queue.put(job)
        return job

    def status(self, job: Job) -> JobStatus:
        with self._lock:
            ahead = self._pending.index(job) if job in self._pending else 0
        return job.status(ahead)

    def cancel(self, owner: str) -> bool:
        """Cancel the owner's waiting or running job; False if there is none."""
        with self._lock:
            job = self._latest.get(owner)
        if job is None or job.finished.is_set():
            return False
        job.cancel()
        return True

    def close(self) -> None:
        """Cancel everything, stop the worker and remove every job folder."""
        with self._lock:
            for job in self._pending:
                job.cancel()
        self._queue.put(None)
        self._thread.join()
        for job in self._latest.values():
            shutil.rmtree(job.folder, ignore_errors=True)

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            state, error, result = self._run(job)
            if state != DONE:
                shutil.rmtree(job.folder, ignore_errors=True)
            with self._lock:
                self._pending.remove(job)
            job._set(state, error, result)  # only now, once its files are gone
            job.finished.set()

    @staticmethod
    def _run(job: Job) -> tuple[str, str | None, Any]:
        """Run the work: ``(final state, error message, result)``."""
        if job.cancelled:
            return CANCELLED, None, None
        job._set(RUNNING)
        try:
            result = job.work(job)
        except Cancelled:
            return CANCELLED, None, None
        except EmavfiError as exc:
            return FAILED, str(exc), None
        except Exception as exc:  # a bug: shown in the page, logged in full
            log.exception("job failed")
            return FAILED, f"unexpected error: {exc!r} (see the server's log)", None
        return (CANCELLED, None, None) if job.cancelled else (DONE, None, result)
