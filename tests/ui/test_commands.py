"""The page's choices become the CLI's own arguments and run the CLI's own code."""

from __future__ import annotations

import shutil
import zipfile
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

from emavfi.cli.main import main
from emavfi.errors import EmavfiError
from emavfi.imageio import read_image
from emavfi.ui.commands import JobRequest, model_choices, parse, user_message

ASSETS = Path(str(resources.files("emavfi") / "assets"))


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.mark.parametrize(
    ("target", "fps", "factor", "name"),
    [
        ("60 fps", 60, None, "clip_60fps.mp4"),
        ("2x slow motion", None, 1, "clip_2x.mp4"),
        ("4x slow motion", None, 3, "clip_4x.mp4"),
        ("8x slow motion", None, 7, "clip_8x.mp4"),
    ],
)
def test_video_targets_are_interpolate_flags(target, fps, factor, name, tmp_path: Path):
    wanted = JobRequest.video("in/clip.mp4", target, None, "classical", "quality", "cpu")
    args = parse("interpolate", wanted.argv(tmp_path))
    assert (args.fps, args.factor, args.output) == (fps, factor, tmp_path / name)
    assert (args.model, args.device, args.fast, args.tta) == ("classical", "cpu", False, False)
    assert args.overwrite and args.quiet  # the job's own folder: never a question on a terminal


def test_custom_fps_modes_and_bad_choices(tmp_path: Path):
    custom = JobRequest.video(
        "a.mkv", "custom fps", 47.952, "blend", "fast (motion at half size)", "auto"
    )
    args = parse("interpolate", custom.argv(tmp_path))
    assert args.fps == 47.952 and args.fast and args.output == tmp_path / "a_47.952fps.mkv"
    assert custom.shown(tmp_path) == (
        "emavfi interpolate a.mkv -o a_47.952fps.mkv --fps 47.952 --model blend --fast --device auto"
    )
    best = JobRequest.pair(
        "x.png", "y.png", "8x (7 new frames)", "blend", "best (flip averaging, 3x slower)", "cpu"
    )
    args = parse("pair", best.argv(tmp_path))
    assert args.num == 7 and args.tta and args.output == tmp_path / "frames" and args.overwrite
    with pytest.raises(EmavfiError, match="custom frame rate"):
        JobRequest.video("a.mp4", "custom fps", None, "blend", "quality", "cpu")
    with pytest.raises(EmavfiError, match="unknown target"):
        JobRequest.video("a.mp4", "3x", None, "blend", "quality", "cpu")
    with pytest.raises(EmavfiError, match="unknown mode"):
        JobRequest.video("a.mp4", "60 fps", None, "blend", "turbo", "cpu")
    with pytest.raises(EmavfiError, match="drop a video"):
        JobRequest.video(None, "60 fps", None, "blend", "quality", "cpu")
    with pytest.raises(EmavfiError, match="drop both images"):
        JobRequest.pair("x.png", None, "2x (1 new frame)", "blend", "quality", "cpu")


def test_models_are_loadable_registry_names_then_checkpoints_on_disk(tmp_path: Path):
    (tmp_path / "best_ema_vfi.safetensors").write_bytes(b"")
    (tmp_path / "ours.pkl").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    choices = model_choices([tmp_path, tmp_path / "missing"])
    assert choices[0] == ("ema-cpu (default)", "ema-cpu")
    values = [value for _, value in choices]
    assert {"blend", "classical"} <= set(values)
    # names that load nothing by themselves (published weights, the test model) are not offered
    assert not {"ema-base", "ema-small", "ema-tiny"} & set(values)
    assert values[-2:] == [str(tmp_path / "best_ema_vfi.safetensors"), str(tmp_path / "ours.pkl")]


def test_a_video_job_is_emavfi_interpolate(tmp_path: Path):
    clip = shutil.copy(ASSETS / "sample_clip.mp4", tmp_path / "clip.mp4")
    assert (
        main(["interpolate", str(clip), "-o", str(tmp_path / "cli.mp4"), "--model", "blend", "-q"])
        == 0
    )
    folder = tmp_path / "job"
    folder.mkdir()
    reports: list[tuple[int, int]] = []
    job = SimpleNamespace(folder=folder, report=lambda *r: reports.append(r))
    result = JobRequest.video(str(clip), "2x slow motion", None, "blend", "quality", "cpu").run(job)
    assert result.output == folder / "clip_2x.mp4" and result.output_frames == 50
    assert reports[0] == (0, 50) and reports[-1] == (50, 50)
    page, cli = _frames(result.output), _frames(tmp_path / "cli.mp4")
    assert len(page) == len(cli) == 50
    assert all(np.array_equal(a, b) for a, b in zip(page, cli))


def test_a_pair_job_is_emavfi_pair_plus_a_zip(tmp_path: Path, capsys):
    first, second = ASSETS / "frame0.png", ASSETS / "frame1.png"
    assert (
        main(
            [
                "pair",
                str(first),
                str(second),
                "-o",
                str(tmp_path / "cli"),
                "--num",
                "3",
                "--model",
                "blend",
            ]
        )
        == 0
    )
    job = SimpleNamespace(folder=tmp_path / "job", report=None)
    wanted = JobRequest.pair(
        str(first), str(second), "4x (3 new frames)", "blend", "quality", "cpu"
    )
    frames, archive = wanted.run(job)
    assert [p.name for p in frames] == sorted(p.name for p in (tmp_path / "cli").iterdir())
    for path in frames:
        assert np.array_equal(read_image(path), read_image(tmp_path / "cli" / path.name))
    with zipfile.ZipFile(archive) as bundle:
        assert bundle.namelist() == [p.name for p in frames]


def test_error_messages_name_the_files_not_the_server_paths():
    message = "cannot read /tmp/emavfi-ui-x/files/ab12/clip.mp4: Invalid data (truncated?)"
    assert user_message(message, ["/tmp/emavfi-ui-x/files/ab12/clip.mp4"]) == (
        "cannot read clip.mp4: Invalid data (truncated?)"
    )
