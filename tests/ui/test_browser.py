"""``emavfi ui`` end to end: a real server, driven in headless Chromium by Playwright.

Needs the ``ui`` extra (Gradio), Playwright and Debian's ``chromium`` (``.ci/run`` installs it);
without them these tests fail, they never skip. The packaged sample has no sound, so the clip
uploaded here is the sample with a tone added.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from importlib import resources
from pathlib import Path

import av
import numpy as np
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from emavfi.cli.main import main

SAMPLE = Path(str(resources.files("emavfi") / "assets" / "sample_clip.mp4"))
MAX_UPLOAD_MB = 0.5
START_S = 120
JOB_S = 60


def _with_tone(source: Path, path: Path, repeats: int = 1) -> Path:
    """``source``'s video packets unchanged, ``repeats`` times in a row, with an AAC tone."""
    with av.open(str(source)) as src, av.open(str(path), "w") as out:
        video_in = src.streams.video[0]
        video = out.add_stream_from_template(video_in)
        tone = out.add_stream("aac", rate=44100)
        for k in range(repeats):
            src.seek(0)
            packets = [p for p in src.demux(video_in) if p.dts is not None]
            stamps = [p.pts for p in packets]
            offset = k * (max(stamps) - min(stamps) + packets[0].duration)  # in stream ticks
            for packet in packets:
                packet.pts, packet.dts = packet.pts + offset, packet.dts + offset
                packet.stream = video
                out.mux(packet)
        samples = 44100 * repeats
        wave = 0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)
        for start in range(0, samples, 1024):
            chunk = np.ascontiguousarray(wave[None, start : start + 1024], np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            out.mux(tone.encode(frame))
        out.mux(tone.encode(None))
    return path


def _facts(path: Path) -> tuple[int, list[tuple[int, int]]]:
    """Video frames decoded, and the audio packets as (pts, size)."""
    with av.open(str(path)) as container:
        audio = [(p.pts, p.size) for p in container.demux(audio=0) if p.size]
        container.seek(0)
        return sum(1 for _ in container.decode(video=0)), audio


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and "torchinductor" not in str(p)}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``emavfi ui`` in a subprocess whose temporary files all go to its own TMPDIR."""
    root = tmp_path_factory.mktemp("ui")
    temp = root / "tmp"
    temp.mkdir()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = root / "server.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emavfi.cli.main",
            "ui",
            "--port",
            str(port),
            "--max-upload-mb",
            str(MAX_UPLOAD_MB),
        ],
        cwd=root,
        env={**os.environ, "TMPDIR": str(temp)},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + START_S
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"emavfi ui did not start:\n{log.read_text()}")
            time.sleep(0.5)
    yield {"url": url, "temp": temp, "process": process, "log": log, "root": root}
    if process.poll() is None:
        process.kill()


@pytest.fixture(scope="module")
def browser():
    executable = os.environ.get("EMAVFI_CHROMIUM") or shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "Chromium not found: apt-get install chromium (.ci/run does), or set EMAVFI_CHROMIUM"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server) -> Page:
    """A fresh page (a new session of the server) with a video uploaded by ``upload``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.goto(server["url"])
    expect(page.locator("#run")).to_be_visible(timeout=JOB_S * 1000)
    yield page
    context.close()


def _upload(page: Page, path: Path) -> None:
    page.locator("#input-video input[type=file]").set_input_files(str(path))


def _choose(page: Page, model: str, target: str) -> None:
    page.locator("#model input").click()
    page.get_by_role("option", name=model, exact=True).click()
    page.get_by_label(target, exact=True).check()


def test_sample_2x_with_audio_plays_and_downloads(page: Page, server, tmp_path: Path):
    clip = _with_tone(SAMPLE, tmp_path / "sample.mp4")
    _upload(page, clip)
    expect(page.locator("#input-info")).to_have_text(
        "320x180 · 25 fps · 1.00 s (25 frames) · audio: aac 44100 Hz stereo", timeout=JOB_S * 1000
    )
    _choose(page, "classical", "2x slow motion")
    page.locator("#run").click()
    expect(page.locator('#status [data-state="done"]')).to_be_visible(timeout=JOB_S * 1000)
    expect(page.locator("#status")).to_contain_text(
        "emavfi interpolate sample.mp4 -o sample_2x.mp4 --factor 1 --model classical --device auto"
    )
    # playable in the page: the browser has read the result's metadata (1 s long)
    expect(page.locator("#result video")).to_have_attribute("src", re.compile(r"/sample_2x\.mp4$"))
    page.wait_for_function("() => document.querySelector('#result video').readyState >= 1")
    assert page.locator("#result video").evaluate("v => v.duration") == pytest.approx(1.0, abs=0.05)
    with page.expect_download() as download:
        page.locator("#download").click()
    assert download.value.suggested_filename == "sample_2x.mp4"
    result = tmp_path / "downloaded.mp4"
    download.value.save_as(result)
    frames, audio = _facts(result)
    assert frames == 50
    assert audio == _facts(clip)[1] and len(audio) > 40  # the tone, copied packet for packet
    # the comparison: the input frames around the middle and the new frame between them
    expect(page.locator("#around")).to_contain_text("input frame, 0.480 s")
    expect(page.locator("#around")).to_contain_text("new frame, 0.500 s")
    expect(page.locator("#around")).to_contain_text("input frame, 0.520 s")


def test_cancel_mid_run_leaves_no_file(page: Page, server, tmp_path: Path):
    # 4 s of video at 8x: 800 frames to make, so that the cancel lands mid-run on fast machines
    _upload(page, _with_tone(SAMPLE, tmp_path / "long.mp4", repeats=4))
    expect(page.locator("#input-info")).to_contain_text("100 frames", timeout=JOB_S * 1000)
    _choose(page, "classical", "8x slow motion")
    before = _files(server["temp"])
    page.locator("#run").click()
    page.wait_for_function(
        "() => Number(document.querySelector('#status progress[value]')?.value) > 0",
        timeout=JOB_S * 1000,
    )
    partial = [p for p in _files(server["temp"]) - before if ".partial-" in p.name]
    assert [p.name.startswith(".long_8x.partial-") for p in partial] == [True]  # mid-run
    page.locator("#cancel").click()
    expect(page.locator('#status [data-state="cancelled"]')).to_be_visible(timeout=JOB_S * 1000)
    assert _files(server["temp"]) == before
    expect(page.locator("#download")).to_be_hidden()


def test_corrupt_upload_shows_the_cli_error_line(page: Page, tmp_path: Path, monkeypatch, capsys):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    monkeypatch.chdir(tmp_path)
    assert main(["interpolate", "corrupt.mp4", "-o", "out.mp4"]) == 2
    cli_line = capsys.readouterr().err.strip()
    prefix = "emavfi interpolate: error: "
    assert cli_line.startswith(prefix + "cannot read corrupt.mp4")
    _upload(page, corrupt)
    expect(page.locator("#input-info .emavfi-error")).to_have_text(
        cli_line.removeprefix(prefix), timeout=JOB_S * 1000
    )
    page.locator("#run").click()
    expect(page.locator("#status .emavfi-error")).to_have_text(
        cli_line.removeprefix(prefix), timeout=JOB_S * 1000
    )


def test_uploads_over_the_limit_are_refused(page: Page, server, tmp_path: Path):
    big = tmp_path / "big.mp4"
    big.write_bytes(bytes(int(MAX_UPLOAD_MB * 1024 * 1024) + 1))
    _upload(page, big)
    expect(page.get_by_text("exceed the maximum allowed size")).to_be_visible(timeout=JOB_S * 1000)
    assert not any(p.name == "big.mp4" for p in _files(server["temp"]))


def test_stopping_the_server_removes_its_temporary_files(server):
    assert "open http://127.0.0.1:" in server["log"].read_text()  # this computer only by default
    assert any(server["temp"].glob("emavfi-ui-*"))
    server["process"].send_signal(signal.SIGTERM)
    assert server["process"].wait(timeout=60) == 0
    assert not any(server["temp"].glob("emavfi-ui-*")), server["log"].read_text()
