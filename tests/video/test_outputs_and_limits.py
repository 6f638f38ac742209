"""Outputs (containers, existing files, SIGTERM, leftovers of killed runs) and the limits of the
numbers `emavfi interpolate` takes."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emavfi.cli.main import main
from emavfi.errors import EmavfiError
from emavfi.video import pipeline
from emavfi.video.pipeline import VideoOptions, check_options, interpolate_video

from .conftest import decode, make_video

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args) -> int:
    return main(["interpolate", *map(str, args), "--model", "blend", "-q"])


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("suffix, codec", [(".webm", "vp9"), (".gif", "gif")])
def test_webm_and_gif_get_a_codec_they_hold(suffix, codec, clip: Path, tmp_path: Path):
    out = tmp_path / f"out{suffix}"
    assert run_cli(clip, "-o", out, "--factor", "1") == 0
    import av

    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == codec
        assert sum(1 for _ in container.decode(video=0)) == 24


def test_a_codec_the_container_cannot_hold_is_one_line(clip: Path, tmp_path: Path, capsys):
    before = snapshot(tmp_path)
    assert run_cli(clip, "-o", tmp_path / "out.webm", "--codec", "libx264") == 2
    assert "cannot hold libx264" in one_error_line(capsys)
    assert snapshot(tmp_path) == before


def test_existing_output_follows_ffmpeg(clip: Path, tmp_path: Path, capsys, monkeypatch):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    assert run_cli(clip, "-o", out) == 2  # not a terminal: refuse
    assert "-y overwrites" in one_error_line(capsys)
    assert run_cli(clip, "-o", out, "-n") == 2
    assert "not overwritten" in one_error_line(capsys)
    assert out.read_bytes() == b"keep me"
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)  # a terminal: ask
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert run_cli(clip, "-o", out) == 2 and out.read_bytes() == b"keep me"
    capsys.readouterr()
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert run_cli(clip, "-o", out) == 0 and len(decode(out)[0]) == 24
    out.write_bytes(b"again")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert run_cli(clip, "-o", out, "-y") == 0 and len(decode(out)[0]) == 24


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_later_run_removes_what_a_killed_run_left(clip: Path, tmp_path: Path):
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".out.partial-{dead}-0a1b2c3d.mp4"
    stale_folder = tmp_path / f".out.partial-{dead}-0a1b2c3e"
    running = tmp_path / f".out.partial-{alive}-0a1b2c3f.mp4"  # another run, still working
    for path in (stale, running):
        path.write_bytes(b"half a video")
    stale_folder.mkdir()
    assert run_cli(clip, "-o", tmp_path / "out.mp4") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["clip.mp4", "out.mp4", running.name]
    )


def test_sigterm_is_handled_like_ctrl_c(tmp_path: Path):
    src = make_video(tmp_path / "long.mp4", count=200)
    out = tmp_path / "out.mp4"
    code = (
        "import sys, time\n"
        "from emavfi.cli.main import main\n"
        "from emavfi.models import registry\n"  # a slow blend: the run is still going at SIGTERM
        "spec = registry.get_spec('blend')\n"
        "class Slow(spec.builder):\n"
        "    def forward(self, *a, **k):\n"
        "        time.sleep(0.05)\n"
        "        return super().forward(*a, **k)\n"
        "registry.register_model(registry.ModelSpec(**{**spec.__dict__, 'builder': Slow}))\n"
        f"sys.exit(main(['interpolate', {str(src)!r}, '-o', {str(out)!r}, '--model', 'blend', "
        "'-q', '--batch-size', '1']))\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".out.partial-") for p in tmp_path.iterdir()):
        assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == "emavfi interpolate: terminated"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**12), 10**12),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(
    fps=numbers,
    factor=st.none() | st.integers(-5, 10**7),
    interval=st.integers(-3, 5),
    batch=st.integers(-3, 9),
    crf=st.none() | st.integers(-5, 70),
    input_fps=numbers,
)
def test_impossible_numbers_are_refused_naming_the_flag(
    fps, factor, interval, batch, crf, input_fps
):
    options = VideoOptions(
        fps=fps,
        factor=factor,
        frame_interval=interval,
        batch_size=batch,
        crf=crf,
        input_fps=input_fps,
    )
    try:
        check_options(options)
    except EmavfiError as exc:
        assert str(exc).startswith("--") and "\n" not in str(exc)
        return
    if fps is not None:
        assert math.isfinite(fps) and 0 < fps <= 1e9
    else:
        assert factor is None or 0 <= factor <= 10**6
    assert interval >= 1 and batch >= 1 and (crf is None or 0 <= crf <= 63)
    assert input_fps is None or (math.isfinite(input_fps) and input_fps > 0)


@pytest.mark.parametrize(
    "flag, value", [("--fps", "nan"), ("--fps", "inf"), ("--batch-size", "0"), ("--factor", "-1")]
)
def test_impossible_numbers_on_the_command_line(flag, value, clip, tmp_path, capsys):
    assert run_cli(clip, "-o", tmp_path / "o.mp4", flag, value) == 2
    assert flag in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_inference_py_names_itself_and_its_flags(clip, tmp_path, capsys):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "inference.py"),
            "--input_video",
            str(clip),
            "--output_video",
            str(tmp_path / "o.mp4"),
            "--model_path",
            "blend",
            "--target_fps",
            "nan",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "inference.py: error: --target_fps must be a number above 0 and at most 1e+09, got nan"
    ]


class _Spy:
    """Blends, records the timesteps of every call, stops the run after ``stop_after`` calls."""

    def __init__(self, stop_after: int | None = None):
        self.calls: list[int] = []
        self.stop_after = stop_after

    def __call__(self, img0, img1, timesteps):
        self.calls.append(len(timesteps))
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt
        return [img0 * (1 - t) + img1 * t for t in timesteps]


def test_huge_factor_is_made_and_written_a_chunk_at_a_time(tmp_path, caplog):
    src = make_video(tmp_path / "two.mp4", count=2)
    spy = _Spy()
    with caplog.at_level(logging.WARNING):
        result = interpolate_video(
            src, tmp_path / "slow.mp4", spy, VideoOptions(factor=200, progress=False, dedup=False)
        )
    assert "makes 402 output frames" in caplog.text
    assert result.output_frames == 402 and result.synthesised == 200  # then the last is held
    assert max(spy.calls) == pipeline.MAX_TIMESTEPS_PER_CALL and sum(spy.calls) == 200
    assert len(decode(tmp_path / "slow.mp4")[0]) == 402


def test_huge_fps_is_streamed_not_planned(clip, tmp_path, caplog):
    spy = _Spy(stop_after=5)
    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        interpolate_video(clip, tmp_path / "o.mp4", spy, VideoOptions(fps=1e6, progress=False))
    assert "makes 1,000,000 output frames" in caplog.text
    assert spy.calls == [pipeline.MAX_TIMESTEPS_PER_CALL] * 5  # never the 83,333 of a pair
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_time_left_is_hidden_until_a_few_frames_are_done():
    class Writer:
        def put(self, item):
            pass

    progress = pipeline._Progress(100, enabled=True)
    shown = []  # whether the bar's format (None: tqdm's default) has the time left, frame by frame
    for _ in range(pipeline.ETA_AFTER + 1):
        shown.append("remaining" in (progress.bar.bar_format or "{remaining}"))
        progress.emit(Writer(), None)
    progress.close()
    assert shown == [False] * pipeline.ETA_AFTER + [True]


def test_oversized_image_in_a_folder_is_one_line(tmp_path, capsys):
    import cv2

    from tests.images import huge_png

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.zeros((48, 64, 3), np.uint8))
    huge_png(folder / "001.png", 100000, 100000)
    line = one_error_line(capsys) if run_cli(folder, "-o", tmp_path / "out.mp4") == 2 else ""
    assert "001.png" in line and "pixels" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_frames_made_from_16_bit_inputs_stay_16_bit():
    """The batcher writes what the model makes at the inputs' depth: the middle of 1000 and 3001
    (of 65535) is 2000 or 2001 (2000.5 in float32), where 8 bits would give 8 of 255."""
    from emavfi.video.timeline import OutputFrame

    made = []
    batcher = pipeline._Batcher(
        lambda a, b, times: [a * (1 - t) + b * t for t in times], 4, made.append
    )
    first = np.full((2, 2, 3), 1000, np.uint16)
    second = np.full((2, 2, 3), 3001, np.uint16)
    batcher.add({0: first, 1: second}, [OutputFrame(0, 0, 1, 0.0), OutputFrame(1, 0, 1, 0.5)])
    batcher.flush()
    (_, copied), (_, middle) = made
    assert copied is first and middle.dtype == np.uint16
    assert np.all(np.abs(middle.astype(int) - 2000) <= 1)
