"""`emavfi demo` on the built-in sample and the original `inference.py` flags."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from emavfi.cli.main import main
from emavfi.video.compare import DIVIDER, labelled

from .conftest import decode

ROOT = Path(__file__).resolve().parents[2]


def _inference_module():
    spec = importlib.util.spec_from_file_location("inference_shim", ROOT / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_writes_frame_video_and_comparison(tmp_path: Path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--model", "blend", "--quiet"]) == 0
    printed = capsys.readouterr().out
    for name in (
        "middle_frame.png",
        "sample_interpolated.mp4",
        "comparison_side_by_side.mp4",
        "input_sample_clip.mp4",
    ):
        assert (out / name).is_file() and str(out / name) in printed
    in_times, _, _ = decode(out / "input_sample_clip.mp4")
    times, frames, _ = decode(out / "sample_interpolated.mp4")
    assert len(times) == 2 * len(in_times)
    cmp_times, cmp_frames, _ = decode(out / "comparison_side_by_side.mp4")
    assert len(cmp_times) == len(times)
    height, width = frames[0].shape[:2]
    assert cmp_frames[0].shape == (height, 2 * width + 4, 3)
    # the demo owns its folder: a second run replaces its files instead of refusing
    assert main(["demo", "-o", str(out), "--model", "blend", "--quiet"]) == 0


def test_demo_comparison_labels_both_halves(tmp_path: Path):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--model", "blend", "--quiet"]) == 0
    _, inputs, _ = decode(out / "input_sample_clip.mp4")
    _, outputs, _ = decode(out / "sample_interpolated.mp4")
    _, comparison, _ = decode(out / "comparison_side_by_side.mp4")
    width = inputs[0].shape[1]
    for k in (0, len(comparison) - 1):  # 2x: output frame k shows input frame k // 2 on the left
        halves = [
            (comparison[k][:, :width], inputs[k // 2], "input"),
            (comparison[k][:, width + DIVIDER :], outputs[k], "emavfi blend 2x"),
        ]
        for half, source, text in halves:
            grey = np.full_like(source, 128)
            box = (labelled(grey, text) != grey).any(axis=-1)  # the label's pixels
            assert 300 < box.sum() < box.size / 4
            half = half.astype(float)
            assert np.abs(half - source)[box].mean() > 40  # the label covers the picture there
            assert np.abs(half - labelled(source, text))[box].mean() < 4  # ... and reads `text`
            assert np.abs(half - source)[~box].mean() < 4  # the rest is the unlabelled picture


def test_inference_flags_map_onto_interpolate():
    shim = _inference_module()
    args = shim.build_parser().parse_args(
        [
            "--input_video",
            "a.mp4",
            "--output_video",
            "b.mp4",
            "--model_path",
            "m.pkl",
            "--target_fps",
            "60",
            "--interpolation_factor",
            "1",
            "--frame_interval",
            "2",
            "--device",
            "cpu",
        ]
    )
    assert shim.to_emavfi_argv(args) == [
        "interpolate",
        "a.mp4",
        "-o",
        "b.mp4",
        "--frame-interval",
        "2",
        "--device",
        "cpu",
        "--model",
        "m.pkl",
        "--fps",
        "60.0",
        "--factor",
        "1",
    ]


def test_inference_defaults_run_on_the_sample(tmp_path: Path, monkeypatch, capsys):
    shim = _inference_module()
    monkeypatch.chdir(tmp_path)
    assert shim.main(["--model_path", "blend", "--target_fps", "50"]) == 0
    written = tmp_path / shim.DEFAULT_OUTPUT
    assert str(written) in capsys.readouterr().out
    assert len(decode(written)[0]) == 50  # the 1 s sample at 50 fps


def test_inference_bad_model_path_exit_2(tmp_path: Path, capsys):
    shim = _inference_module()
    code = shim.main(
        ["--output_video", str(tmp_path / "o.mp4"), "--model_path", str(tmp_path / "none.pkl")]
    )
    assert code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_help_documents_flags_and_precedence(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["interpolate", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--fps",
        "--factor",
        "--multi",
        "--frame-interval",
        "--no-scene-detect",
        "--crf",
        "--codec",
        "--scale",
        "--quiet",
    ):
        assert flag in text
    assert "--fps wins" in text
    assert "--multi 2 is --factor 1" in text  # the two conventions side by side
