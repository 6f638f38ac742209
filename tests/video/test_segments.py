"""--segment: finished segment files, resume after kill -9, joins frame-exact with one run."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emavfi.cli.main import main

from .conftest import decode, make_video

# Lossless H.264 (--crf 0): segments encoded apart decode to the very frames of one run.
COMMON = ["--model", "blend", "--crf", "0"]

KILLED_RUN = """
import os, signal, sys
from emavfi.cli.main import main
from emavfi.video import writer

written = 0
write = writer.VideoSink.write


def write_then_die(self, item):
    global written
    write(self, item)
    written += 1
    if written == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)


writer.VideoSink.write = write_then_die
main(sys.argv[2:])
"""


def _same(a: Path, b: Path) -> None:
    (times_a, images_a, facts_a), (times_b, images_b, facts_b) = decode(a), decode(b)
    assert times_a == times_b  # no frame duplicated or missing at a join
    assert all(np.array_equal(x, y) for x, y in zip(images_a, images_b, strict=True))
    assert facts_a["audio"] == facts_b["audio"]


@pytest.fixture
def film(tmp_path: Path) -> Path:
    return make_video(tmp_path / "film.mp4", count=60, audio=True, cut_at=27)  # 5 s, a cut


@pytest.mark.parametrize(
    "flags",
    [["--fps", "30"], ["--factor", "2"], ["--fps", "24", "--start", "0.5", "--end", "4.2"]],
)
def test_segments_join_frame_exact_with_one_run(film: Path, tmp_path: Path, flags):
    whole, joined = tmp_path / "whole.mp4", tmp_path / "joined.mp4"
    assert main(["interpolate", str(film), "-o", str(whole), *COMMON, *flags, "-q"]) == 0
    argv = [str(film), "-o", str(joined), *COMMON, *flags, "-q", "--segment", "1"]
    assert main(["interpolate", *argv]) == 0
    _same(whole, joined)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.mp4", "joined.mp4", "whole.mp4"]


def test_a_run_killed_mid_segment_resumes_frame_exact(film: Path, tmp_path: Path, capsys):
    whole, out = tmp_path / "whole.mp4", tmp_path / "out.mp4"
    flags = [*COMMON, "--fps", "30", "--segment", "1"]
    assert main(["interpolate", str(film), "-o", str(whole), *flags]) == 0
    full = int(re.search(r"\((\d+) synthesised\)", capsys.readouterr().out).group(1))
    argv = ["interpolate", str(film), "-o", str(out), *flags, "-q"]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, "75", *argv], check=False, capture_output=True, text=True
    )
    assert killed.returncode == -signal.SIGKILL  # in segment 3 (30 frames a segment)
    parts = tmp_path / "out.mp4.parts"
    assert sorted(p.name for p in parts.glob("segment_*")) == [
        "segment_00000.mp4",
        "segment_00001.mp4",
    ]
    assert not out.exists()
    assert main(["interpolate", str(film), "-o", str(out), *flags]) == 0
    made = int(re.search(r"\((\d+) synthesised\)", capsys.readouterr().out).group(1))
    assert 0 < made < full  # the two finished segments were not made again
    _same(whole, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.mp4", "out.mp4", "whole.mp4"]


def test_a_work_folder_of_other_settings(film: Path, tmp_path: Path, capsys):
    out = tmp_path / "out.mp4"
    parts = tmp_path / "out.mp4.parts"
    parts.mkdir()
    (parts / "manifest.json").write_text('{"settings": "other"}')
    (parts / "segment_00000.mp4").write_bytes(b"from another run")
    argv = ["interpolate", str(film), "-o", str(out), *COMMON, "--segment", "1", "-q"]
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another input, model or settings" in err[0]
    assert (parts / "segment_00000.mp4").read_bytes() == b"from another run" and not out.exists()
    assert main(argv) == 0  # without --resume: started over
    assert len(decode(out)[0]) == 120 and not parts.exists()


@pytest.mark.parametrize(
    "flags, message",
    [(["--segment", "0.5"], "at least 1 s"), (["--segment", "2", "-o", "frames"], "video file")],
)
def test_bad_segment_flags(film: Path, tmp_path: Path, capsys, flags, message):
    code = main(["interpolate", str(film), *COMMON, "-q", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.mp4"]


def test_progress_names_the_segment(tmp_path: Path):
    from fractions import Fraction

    from emavfi.video.pipeline import segments_of
    from emavfi.video.segments import SegmentedSink

    sink = SegmentedSink(
        tmp_path / "o.mp4", tmp_path, Fraction(1), Fraction(11, 2), 2, set(), lambda *a: None
    )
    label = segments_of(sink)
    assert [label(Fraction(t)) for t in (1, 2.9, 3, 6.4)] == [
        "segment 1/3",
        "segment 1/3",
        "segment 2/3",
        "segment 3/3",
    ]
    assert segments_of(object()) is None
