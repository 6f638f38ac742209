"""`emavfi data check / prepare-middlebury / extract`, through the CLI's main()."""

from __future__ import annotations

import numpy as np

from emavfi.cli.main import main
from emavfi.data.check import check_data_dir
from emavfi.data.flo import write_flo
from emavfi.data.sources import load_frame, open_source
from tests.data.conftest import numbered_frame, write_rgb
from tests.data.test_sources import _closest, _write_video


def test_check_clean_folder_passes(scene_root, capsys):
    assert main(["data", "check", str(scene_root)]) == 0
    out = capsys.readouterr().out
    assert "split train: 2 scenes, 8 frames" in out and "split val: 1 scenes, 4 frames" in out
    assert "no problems" in out


def test_check_lists_every_planted_problem(scene_root, capsys):
    train = scene_root / "train"
    (train / "a" / "frame0002.png").write_bytes(b"garbage")  # undecodable
    write_rgb(train / "a" / "frame0004.png", numbered_frame(40, size=(20, 32)))  # wrong size
    (train / "b" / "frame0002.png").rename(train / "b" / "frame0007.png")  # b: 1, 3, 7
    write_rgb(train / "b" / "cover.png", numbered_frame(1))  # no number
    write_rgb(train / "b" / "frame07.png", numbered_frame(1))  # duplicate number 7
    write_rgb(scene_root / "val" / "short" / "frame0001.png", numbered_frame(1))  # too short

    report = check_data_dir(scene_root)
    found = {(p.path.name, p.message.split(" ")[0]) for p in report.problems}
    assert ("frame0002.png", "cannot") in found
    assert ("frame0004.png", "size") in found
    assert ("frame0001.png", "numbering") in found  # b is 1, 3, 7: gaps after 1 and 3
    assert ("frame0003.png", "numbering") in found
    assert ("cover.png", "no") in found
    assert any(name in ("frame07.png", "frame0007.png") and word == "frame" for name, word in found)
    assert ("short", "only") in found
    assert len(report.problems) == 7

    assert main(["data", "check", str(scene_root)]) == 1
    out = capsys.readouterr().out
    for problem in report.problems:
        assert str(problem) in out
    assert "7 problem(s)" in out


def test_check_reports_oversized_headers_and_empty_scene_folders(scene_root, capsys):
    from tests.images import huge_png

    huge_png(scene_root / "train" / "a" / "frame0003.png", 100000, 100000)
    (scene_root / "train" / "empty").mkdir()
    (scene_root / "nothing_here").mkdir()
    report = check_data_dir(scene_root)
    found = {(p.path.name, p.message) for p in report.problems}
    assert ("empty", "empty scene folder (no images)") in found
    assert ("nothing_here", "empty scene folder (no images)") in found
    assert any(name == "frame0003.png" and "pixels" in message for name, message in found)
    assert len(report.problems) == 3
    assert main(["data", "check", str(scene_root)]) == 1
    assert "3 problem(s)" in capsys.readouterr().out


def test_check_missing_folder_is_a_user_error(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


def _fake_middlebury(root):
    for seq in ("Alpha", "Beta"):
        for number in range(7, 15):
            write_rgb(
                root / "other-data" / seq / f"frame{number:02d}.png", numbered_frame(number * 10)
            )
    write_rgb(root / "other-gt-interp" / "Alpha" / "frame10i11.png", numbered_frame(105))
    flow = np.random.default_rng(0).normal(size=(24, 32, 2)).astype(np.float32)
    write_flo(root / "other-gt-flow" / "Alpha" / "flow10.flo", flow)
    return flow


def test_prepare_middlebury(tmp_path, capsys):
    src, dst = tmp_path / "download", tmp_path / "prepared"
    flow = _fake_middlebury(src)
    before = sorted(p.stat().st_mtime_ns for p in src.rglob("*") if p.is_file())
    assert main(["data", "prepare-middlebury", str(src), str(dst)]) == 0
    assert sorted(p.name for p in dst.iterdir()) == ["Alpha", "Alpha-interp", "Beta"]
    assert min(p.name for p in (dst / "Alpha").glob("*.png")) == "frame0007.png"
    assert np.array_equal(np.load(dst / "Alpha" / "flow10.npy"), flow)
    (window,) = open_source("scenes", dst / "Alpha-interp")
    assert [int(load_frame(r)[0, 0, 0]) for r in (*window.inputs, window.targets[0][1])] == [
        100,
        110,
        105,
    ]
    assert len(open_source("scenes", dst)) == 6 + 6 + 1
    assert check_data_dir(dst).ok
    assert before == sorted(p.stat().st_mtime_ns for p in src.rglob("*") if p.is_file())


def test_prepare_middlebury_rejects_corrupt_flo(tmp_path, capsys):
    src = tmp_path / "download"
    _fake_middlebury(src)
    flo = src / "other-gt-flow" / "Alpha" / "flow10.flo"
    flo.write_bytes(flo.read_bytes()[:100])
    assert main(["data", "prepare-middlebury", str(src), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "flow10.flo" in err and "truncated" in err and "Traceback" not in err


def test_extract_cuts_scenes(tmp_path, capsys):
    ramp = np.linspace(0, 60, 64, dtype=np.float32)[None, :, None]
    frames = [np.broadcast_to(ramp + 20 + 6 * i, (48, 64, 3)).astype(np.uint8) for i in range(6)]
    frames += [np.broadcast_to(ramp + 150 + 6 * i, (48, 64, 3)).astype(np.uint8) for i in range(7)]
    for image in frames[6:]:
        image[..., 2] = 40
    frames.append(np.zeros((48, 64, 3), np.uint8))  # a one-frame scene at the end: dropped
    clip = tmp_path / "clip.avi"
    _write_video(clip, frames)
    assert main(["data", "extract", str(clip), str(tmp_path / "out"), "--min-scene-len", "1"]) == 0
    scenes = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in scenes] == ["clip_scene001", "clip_scene002"]
    assert [len(list(p.glob("*.png"))) for p in scenes] == [6, 7]
    assert _closest(load_frame(scenes[1] / "frame00003.png"), frames) == 8
    assert check_data_dir(tmp_path / "out").ok
