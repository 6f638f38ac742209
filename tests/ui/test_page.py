"""How the page renders a job's status (the browser test sees the running and final states)."""

from __future__ import annotations

from emavfi.ui.jobs import FAILED, QUEUED, RUNNING, JobStatus
from emavfi.ui.page import status_html


def test_waiting_running_and_failed_jobs_are_rendered():
    assert "Waiting: 2 job(s) ahead of yours." in status_html(JobStatus(QUEUED, ahead=2))
    starting = status_html(JobStatus(RUNNING, elapsed_s=3.2))
    assert "<progress></progress>" in starting and "Starting: 3 s" in starting
    running = status_html(JobStatus(RUNNING, done=40, total=200, elapsed_s=5, eta_s=20.4))
    assert '<progress value="40" max="200"></progress>' in running
    assert "40 / 200 frames, 5 s, about 20 s left" in running
    failed = status_html(JobStatus(FAILED, error="cannot read <a>.mp4: bad data"))
    assert '<p class="emavfi-error">cannot read &lt;a&gt;.mp4: bad data</p>' in failed
    assert 'data-state="failed"' in failed
