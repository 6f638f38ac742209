"""`emavfi demo` on the built-in sample and the original `inference.py` flags."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from emavfi.cli.main import main

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
        "--frame-interval",
        "--no-scene-detect",
        "--crf",
        "--codec",
        "--scale",
        "--quiet",
    ):
        assert flag in text
    assert "--fps wins" in text
