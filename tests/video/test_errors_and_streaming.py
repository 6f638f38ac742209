"""Bad input (one line, exit 2, nothing written), Ctrl-C, duplicates and the thread helpers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from emavfi.cli.main import main
from emavfi.video.pipeline import VideoOptions, interpolate_video
from emavfi.video.threads import BackgroundConsumer, BackgroundProducer

from .conftest import bar_frame, decode, make_video


def _audio_only(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        chunk = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="flt", layout="mono"
        )
        chunk.sample_rate, chunk.pts = 8000, 0
        container.mux(stream.encode(chunk))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "input not found"),
        ("text", "Invalid data found"),
        ("truncated", "Invalid data found"),
        ("audio_only", "has no video stream"),
        ("one_frame", "fewer than two video frames (1)"),
        ("same_as_input", "is the input; choose another name"),
        ("no_folder", "missing_dir does not exist"),
        ("bad_codec", "unknown or unavailable video codec 'nosuchcodec'"),
        ("bad_suffix", "unknown video file type '.xyz'"),
        ("bad_model", "checkpoint not found"),
        ("bad_interval", "--frame-interval must be 1 or more, got 0"),
        ("bad_fps", "--fps must be a number above 0 and at most 1e+09, got -5"),
        ("unwritable_folder", "folder /proc is not writable"),
        ("unwritable_sequence", "folder /proc is not writable"),
        ("missing_device", "device 'cuda' is not available"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(
    case, message, clip: Path, tmp_path: Path, capsys, monkeypatch
):
    out = tmp_path / "out.mp4"
    extra: list[str] = []
    src = clip
    if case == "missing":
        src = tmp_path / "nope.mp4"
    elif case == "text":
        src = tmp_path / "notes.mp4"
        src.write_text("not a video")
    elif case == "truncated":
        src = tmp_path / "cut_short.mp4"
        src.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    elif case == "audio_only":
        src = _audio_only(tmp_path / "tone.m4a")
    elif case == "one_frame":
        src = make_video(tmp_path / "single.mp4", count=1)
    elif case == "same_as_input":
        out = clip
    elif case == "no_folder":
        out = tmp_path / "missing_dir" / "out.mp4"
    elif case == "bad_codec":
        extra = ["--codec", "nosuchcodec"]
    elif case == "bad_suffix":
        out = tmp_path / "out.xyz"
    elif case == "bad_model":
        extra = ["--model", str(tmp_path / "missing.safetensors")]
    elif case == "bad_interval":
        extra = ["--frame-interval", "0"]
    elif case == "bad_fps":
        extra = ["--fps", "-5"]
    elif case == "unwritable_folder":  # no one can create files in /proc, not even root
        out = Path("/proc") / "out.mp4"
    elif case == "unwritable_sequence":
        out = Path("/proc") / "frames_out"
    elif case == "missing_device":  # a machine without CUDA, whatever this one has
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        extra = ["--device", "cuda"]
    before = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in tmp_path.iterdir()
        if p.is_file()
    }
    model = [] if case == "bad_model" else ["--model", "blend"]
    code = main(["interpolate", str(src), "-o", str(out), "--quiet", *model, *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("emavfi interpolate: error:")
    assert message in err[0]
    after = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in tmp_path.iterdir()
        if p.is_file()
    }
    assert after == before  # no output, no temp file, input untouched


class _Interrupting:
    """Blends like the `blend` engine, then simulates Ctrl-C on the third call."""

    def __init__(self):
        self.calls = 0

    def __call__(self, img0, img1, timesteps):
        self.calls += 1
        if self.calls == 3:
            raise KeyboardInterrupt("simulated Ctrl-C")
        return [img0 * (1 - t) + img1 * t for t in timesteps]


def test_ctrl_c_leaves_no_partial_output(clip: Path, tmp_path: Path):
    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    with pytest.raises(KeyboardInterrupt, match="simulated Ctrl-C"):
        interpolate_video(
            clip,
            tmp_path / "out.mp4",
            _Interrupting(),
            VideoOptions(factor=1, batch_size=1, progress=False),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    assert hashlib.sha256(clip.read_bytes()).hexdigest() == digest


def test_on_progress_counts_every_frame_and_raising_from_it_cancels(clip: Path, tmp_path: Path):
    blend = lambda a, b, ts: [a * (1 - t) + b * t for t in ts]
    reports: list[tuple[int, int]] = []
    result = interpolate_video(
        clip,
        tmp_path / "out.mp4",
        blend,
        VideoOptions(factor=1, progress=False, on_progress=lambda *r: reports.append(r)),
    )
    assert reports == [(done, 24) for done in range(25)] and result.output_frames == 24

    class Cancelled(Exception):
        pass

    def cancel_at_five(done: int, total: int) -> None:
        if done == 5:
            raise Cancelled

    with pytest.raises(Cancelled):
        interpolate_video(
            clip,
            tmp_path / "cancelled.mp4",
            blend,
            VideoOptions(factor=1, batch_size=1, progress=False, on_progress=cancel_at_five),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "out.mp4"]


def test_duplicates_are_skipped_not_stuttered(tmp_path: Path):
    images = [bar_frame(i, 64, 48) for i in (0, 1, 1, 2, 3, 4)]  # input 2 repeats input 1
    src = make_video(tmp_path / "dup.mp4", count=6, frames=images)
    blend = lambda a, b, ts: [a * (1 - t) + b * t for t in ts]
    result = interpolate_video(
        src, tmp_path / "d.mp4", blend, VideoOptions(factor=1, progress=False)
    )
    assert result.duplicates == 1 and result.output_frames == 12
    _, out, _ = decode(tmp_path / "d.mp4")
    # the duplicate's slot (output 4, at 2/12 s) lies halfway between input 1 (bar at step 1,
    # 1/12 s) and input 3 (bar at step 2, 3/12 s): motion continues instead of stopping
    expected = (bar_frame(1, 64, 48).astype(float) + bar_frame(2, 64, 48)) / 2
    assert np.abs(out[4].astype(float) - expected).mean() < 6
    plain = interpolate_video(
        src, tmp_path / "p.mp4", blend, VideoOptions(factor=1, dedup=False, progress=False)
    )
    assert plain.duplicates == 0
    stalled = decode(tmp_path / "p.mp4")[1][4]  # without dedup the motion stops there
    assert np.abs(stalled.astype(float) - bar_frame(1, 64, 48)).mean() < 6


def test_producer_error_is_reraised_and_consumer_keeps_order():
    def produce(emit):
        emit(1)
        raise ValueError("decoder broke")

    items = []
    with pytest.raises(ValueError, match="decoder broke"):
        items.extend(BackgroundProducer(produce, maxsize=1))
    assert items == [1]

    seen = []
    consumer = BackgroundConsumer(seen.append, maxsize=2)
    for i in range(50):
        consumer.put(i)
    consumer.finish()
    assert seen == list(range(50))

    def broken(item):
        raise OSError("disk full")

    consumer = BackgroundConsumer(broken, maxsize=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            consumer.put(i)
        consumer.finish()


def test_inference_mode_and_batches(clip: Path, tmp_path: Path):
    calls = []

    def spy(img0, img1, timesteps):
        calls.append((img0.shape, torch.is_inference_mode_enabled()))
        return [img0 * (1 - t) + img1 * t for t in timesteps]

    interpolate_video(
        clip, tmp_path / "o.mp4", spy, VideoOptions(factor=1, batch_size=4, progress=False)
    )
    assert all(inference for _, inference in calls)
    assert calls[0][0] == (4, 3, 48, 64)  # four pairs per model call
    assert sum(shape[0] for shape, _ in calls) == 11  # every pair once
