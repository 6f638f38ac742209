"""--preview N: N synthesised frames beside their inputs, evenly spaced, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from emavfi.cli.main import main
from emavfi.imageio import read_image

from .conftest import make_video


def test_preview_images_are_the_made_frame_between_its_inputs(tmp_path: Path):
    clip = make_video(tmp_path / "clip.mp4", count=48)  # 4 s at 12 fps
    argv = ["interpolate", str(clip), "--fps", "24", "--model", "blend", "--quiet"]
    assert main([*argv, "--preview", "3"]) == 0
    folder = tmp_path / "clip.preview"
    names = sorted(p.name for p in folder.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip.preview"]  # no video
    times = [float(re.match(r"preview_\d\d_([\d.]+)s\.png", name).group(1)) for name in names]
    assert len(times) == 3 and times == sorted(times)
    assert all(
        abs(time - centre) <= 1 / 24 + 0.001 for time, centre in zip(times, [2 / 3, 2, 10 / 3])
    )
    for name in names:
        image = read_image(folder / name).astype(int)
        assert image.shape == (48, 3 * 64, 3)
        left, made, right = image[:, :64], image[:, 64:128], image[:, 128:]
        assert np.abs(left - right).max() > 100  # two different frames (the bar moved)
        assert np.abs(made - (left + right) / 2).max() <= 1  # blend at t = 0.5
    assert main([*argv, "--preview", "2", "--start", "1", "--end", "2"]) == 2  # exists
    assert main([*argv, "--preview", "2", "--start", "1", "--end", "2", "-y"]) == 0
    times = sorted(float(p.name.split("_")[2][:-5]) for p in folder.iterdir())
    assert len(times) == 2 and all(0 < time < 1 for time in times)  # of the trimmed output


def test_preview_needs_a_positive_count(tmp_path: Path, capsys):
    clip = make_video(tmp_path / "clip.mp4", count=6)
    code = main(["interpolate", str(clip), "--model", "blend", "--preview", "0"])
    assert code == 2 and "--preview must be 1 or more" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
