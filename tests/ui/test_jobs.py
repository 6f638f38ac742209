"""The job runner of the web UI: one job at a time in order, cancel, failures, clean folders."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from emavfi.errors import EmavfiError
from emavfi.ui.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Cancelled, JobRunner

WAIT_S = 10


@pytest.fixture
def runner(tmp_path: Path):
    runner = JobRunner(tmp_path / "jobs")
    yield runner
    runner.close()


def _blocking(log: list, name: str, release: threading.Event, running: threading.Event):
    """Work that writes a file, says it runs, and waits until released."""

    def work(job):
        log.append(f"{name} start")
        (job.folder / f"{name}.mp4").write_bytes(b"partial")
        running.set()
        assert release.wait(WAIT_S)
        log.append(f"{name} end")
        return name

    return work


def test_one_job_at_a_time_in_order_with_the_queue_position(runner: JobRunner):
    log: list[str] = []
    release = threading.Event()
    started = [threading.Event(), threading.Event()]
    first = runner.submit("alice", _blocking(log, "a", release, started[0]))
    second = runner.submit("bob", _blocking(log, "b", release, started[1]))
    assert started[0].wait(WAIT_S)
    assert runner.status(first).state == RUNNING
    assert runner.status(second).state == QUEUED and runner.status(second).ahead == 1
    assert not started[1].wait(0.3)  # the second waits while the first runs
    release.set()
    assert second.finished.wait(WAIT_S)
    assert log == ["a start", "a end", "b start", "b end"]
    assert runner.status(first).result == "a" and runner.status(second).state == DONE
    assert (first.folder / "a.mp4").exists()  # a finished job's result stays to be downloaded


def test_cancel_stops_a_running_job_and_removes_its_files(runner: JobRunner):
    reports = threading.Event()

    def work(job):
        (job.folder / ".out.partial.mp4").write_bytes(b"partial")
        for done in range(10**6):
            job.report(done, 10**6)
            reports.set()
        return "finished"

    job = runner.submit("alice", work)
    assert reports.wait(WAIT_S)
    status = runner.status(job)
    assert status.state == RUNNING and status.total == 10**6 and status.eta_s is not None
    assert runner.cancel("alice")
    assert job.finished.wait(WAIT_S)
    assert runner.status(job).state == CANCELLED and runner.status(job).result is None
    assert not job.folder.exists()
    assert not runner.cancel("alice")  # nothing left to cancel


def test_a_cancelled_waiting_job_never_runs(runner: JobRunner):
    release, running = threading.Event(), threading.Event()
    log: list[str] = []
    first = runner.submit("alice", _blocking(log, "a", release, running))
    second = runner.submit("bob", _blocking(log, "b", release, threading.Event()))
    assert running.wait(WAIT_S)
    runner.cancel("bob")
    release.set()
    assert second.finished.wait(WAIT_S) and first.finished.is_set()
    assert log == ["a start", "a end"]
    assert runner.status(second).state == CANCELLED and not second.folder.exists()


def test_failures_keep_the_message_and_leave_no_files(runner: JobRunner):
    def bad_input(job):
        (job.folder / "half.mp4").write_bytes(b"partial")
        raise EmavfiError("cannot read clip.mp4: Invalid data found when processing input")

    def bug(job):
        raise ZeroDivisionError("division by zero")

    first = runner.submit("alice", bad_input)
    second = runner.submit("bob", bug)
    assert second.finished.wait(WAIT_S)
    assert runner.status(first).state == FAILED
    assert runner.status(first).error == (
        "cannot read clip.mp4: Invalid data found when processing input"
    )
    assert "ZeroDivisionError" in runner.status(second).error
    assert not first.folder.exists() and not second.folder.exists()


def test_one_job_per_owner_and_the_previous_result_is_removed(runner: JobRunner):
    release, running = threading.Event(), threading.Event()
    first = runner.submit("alice", _blocking([], "a", release, running))
    with pytest.raises(EmavfiError, match="already waiting or running"):
        runner.submit("alice", lambda job: None)
    release.set()
    assert first.finished.wait(WAIT_S) and (first.folder / "a.mp4").exists()
    second = runner.submit("alice", lambda job: "again")
    assert not first.folder.exists()  # the next job replaces the shown result
    assert second.finished.wait(WAIT_S) and runner.status(second).result == "again"


def test_close_cancels_and_removes_every_job_folder(tmp_path: Path):
    runner = JobRunner(tmp_path / "jobs")
    running = threading.Event()
    done = runner.submit("alice", lambda job: (job.folder / "kept.mp4").write_bytes(b"x"))
    assert done.finished.wait(WAIT_S)

    def until_cancelled(job):
        running.set()
        while True:
            job.report(0, 1)

    busy = runner.submit("bob", until_cancelled)
    assert running.wait(WAIT_S)
    runner.close()
    assert busy.finished.is_set() and runner.status(busy).state == CANCELLED
    assert list((tmp_path / "jobs").iterdir()) == []


def test_report_raises_once_cancelled(runner: JobRunner):
    job = runner.submit("alice", lambda job: None)
    job.cancel()
    with pytest.raises(Cancelled):
        job.report(1, 2)
