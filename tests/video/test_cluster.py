"""--cluster: the segments made as Ray tasks on a local Ray instance equal the local run's."""

from __future__ import annotations

from pathlib import Path

import pytest

from emavfi.cli.main import main

from .conftest import make_video
from .test_segments import COMMON, _same


@pytest.fixture(scope="module")
def local_ray():
    import ray  # the test extra brings the cluster extra: this test never skips in CI

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # two worker processes
    yield ray
    ray.shutdown()


def test_a_cluster_run_equals_the_local_run(local_ray, tmp_path: Path):
    film = make_video(tmp_path / "film.mp4", count=48, audio=True, cut_at=20)
    local, remote = tmp_path / "local.mp4", tmp_path / "remote.mp4"
    flags = [*COMMON, "--fps", "30", "--segment", "1", "-q"]
    assert main(["interpolate", str(film), "-o", str(local), *flags]) == 0
    assert main(["interpolate", str(film), "-o", str(remote), *flags, "--cluster", "auto"]) == 0
    _same(local, remote)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.mp4", "local.mp4", "remote.mp4"]


def test_cluster_needs_segments(tmp_path: Path, capsys):
    film = make_video(tmp_path / "film.mp4", count=6)
    out = tmp_path / "out.mp4"
    assert main(["interpolate", str(film), "-o", str(out), "--cluster", "auto", *COMMON]) == 2
    assert "--segment" in capsys.readouterr().err and not out.exists()


def test_without_ray_cluster_is_one_line(tmp_path: Path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    film = make_video(tmp_path / "film.mp4", count=6)
    out = tmp_path / "out.mp4"
    argv = [str(film), "-o", str(out), "--cluster", "auto", "--segment", "1", *COMMON]
    assert main(["interpolate", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install "emavfi[cluster]"' in err[0]
    assert not out.exists()
