"""Batch runs: files and folders in, derived names out, done files skipped, failures reported."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from emavfi.cli.main import main
from emavfi.video.batch import output_name

from .conftest import decode, make_video


def _run(*argv) -> int:
    return main(["interpolate", *map(str, argv), "--model", "blend", "--quiet"])


def _files(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (hidden ones too) -> its sha256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    make_video(folder / "a.mp4", count=12)
    make_video(folder / "b.mkv", count=8)
    (folder / "bad.mp4").write_text("not a video")
    (folder / "notes.txt").write_text("not an input")
    return folder


def test_one_bad_file_is_reported_and_the_others_are_made(clips, tmp_path, capsys):
    single = make_video(tmp_path / "single.mov", count=6)
    before = _files(tmp_path)
    out = tmp_path / "out"
    assert _run(single, clips, "-o", out) == 1
    err = capsys.readouterr().err
    assert "bad.mp4" in err and "Traceback" not in err
    assert sorted(_files(out)) == ["a.2x.mp4", "b.2x.mkv", "single.2x.mov"]  # no partial file
    assert len(decode(out / "a.2x.mp4")[0]) == 24
    assert len(decode(out / "b.2x.mkv")[0]) == 16
    assert len(decode(out / "single.2x.mov")[0]) == 12
    assert {k: v for k, v in _files(tmp_path).items() if not k.startswith("out/")} == before


def test_done_outputs_are_skipped_and_minus_y_redoes_them(clips, tmp_path, capsys):
    (clips / "bad.mp4").unlink()
    assert _run(clips, "--fps", "30") == 0  # next to each input
    assert sorted(_files(clips)) == ["a.30fps.mp4", "a.mp4", "b.30fps.mkv", "b.mkv", "notes.txt"]
    made = _files(clips)
    first = decode(clips / "a.30fps.mp4")[1]
    (clips / "a.30fps.mp4").write_bytes(b"done before")  # a file that exists counts as done
    capsys.readouterr()
    assert main(["interpolate", str(clips), "--fps", "30", "--model", "blend"]) == 0
    assert "0 done, 2 skipped" in capsys.readouterr().out
    assert (clips / "a.30fps.mp4").read_bytes() == b"done before"
    assert sorted(_files(clips)) == sorted(made)  # our outputs were not taken as inputs
    assert main(["interpolate", str(clips), "--fps", "30", "--model", "blend", "-y"]) == 0
    assert "2 done, 0 skipped" in capsys.readouterr().out
    assert sorted(_files(clips)) == sorted(made)
    assert all(np.array_equal(a, b) for a, b in zip(decode(clips / "a.30fps.mp4")[1], first))


def test_recursive_keeps_the_tree_and_plain_folders_do_not_descend(tmp_path):
    clips = tmp_path / "clips"
    (clips / "day2").mkdir(parents=True)
    make_video(clips / "a.mp4", count=6)
    make_video(clips / "day2" / "a.mp4", count=6)
    assert _run(clips, "-o", tmp_path / "flat") == 0
    assert sorted(_files(tmp_path / "flat")) == ["a.2x.mp4"]
    assert _run(clips, "-o", tmp_path / "tree", "--recursive", "--factor", "3") == 0
    assert sorted(_files(tmp_path / "tree")) == ["a.4x.mp4", "day2/a.4x.mp4"]
    assert len(decode(tmp_path / "tree" / "day2" / "a.4x.mp4")[0]) == 24


def test_a_single_input_without_output_is_named_beside_it(clip, tmp_path, capsys):
    assert _run(clip) == 0
    assert len(decode(tmp_path / "clip.2x.mp4")[0]) == 24
    assert main(["interpolate", str(clip), "--model", "blend"]) == 0  # done: skipped
    assert "exists: skipped" in capsys.readouterr().out
    frames = tmp_path / "frames"
    assert _run(clip, "-o", frames) == 0  # an image folder, as before
    assert _run(frames, "--multi", "4") == 0  # a folder of images is one input
    assert len(decode(tmp_path / "frames.4x.mp4")[0]) == 4 * 24


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "input not found"),
        ("file_output", "-o is the folder"),
        ("same_name", "would both write"),
        ("bad_model", "missing.safetensors"),
        ("empty", "no videos"),
    ],
)
def test_batch_mistakes_are_one_line_exit_2_nothing_written(case, message, clip, tmp_path, capsys):
    inputs, out = [clip, make_video(tmp_path / "other.mp4", count=4)], tmp_path / "out"
    model = ["--model", "blend"]
    if case == "missing":
        inputs.append(tmp_path / "nope.mp4")
    elif case == "file_output":
        out = tmp_path / "out.mp4"
    elif case == "same_name":
        (tmp_path / "sub").mkdir()
        inputs.append(make_video(tmp_path / "sub" / "clip.mp4", count=4))
    elif case == "bad_model":
        model = ["--model", str(tmp_path / "missing.safetensors")]
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        make_video(tmp_path / "empty" / "old.2x.mp4", count=4)  # an output of ours only
        inputs = [tmp_path / "empty"]
    before = _files(tmp_path)
    code = main(["interpolate", *map(str, inputs), "-o", str(out), "--quiet", *model])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0]
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    "name, fps, factor, expected",
    [
        ("film.mkv", 60, None, "film.60fps.mkv"),
        ("film.MOV", 59.94, 3, "film.59.94fps.mov"),
        ("film.h264", None, None, "film.2x.mp4"),
        ("film.mp4", None, 3, "film.4x.mp4"),
    ],
)
def test_output_names(name, fps, factor, expected):
    assert output_name(Path(name), fps, factor) == expected
