"""--threads: one budget shared by the model, the decoder and the encoder."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from emavfi.cli.main import main
from emavfi.errors import EmavfiError
from emavfi.video import reader, writer
from emavfi.video.threads import ThreadBudget, thread_budget

from .conftest import decode, make_video


@given(st.integers(min_value=3, max_value=512))
def test_the_stages_together_ask_for_no_more_than_the_budget(total):
    budget = thread_budget(total)
    assert min(budget.torch, budget.decoder, budget.encoder) >= 1
    assert budget.torch + budget.decoder + budget.encoder <= total
    assert budget.torch >= total // 2  # the model does most of the work


def test_small_budgets_and_the_default():
    assert thread_budget(1) == thread_budget(2) == ThreadBudget(1, 1, 1)
    assert thread_budget(16) == ThreadBudget(8, 4, 4)
    assert thread_budget() == thread_budget(len(os.sched_getaffinity(0)))  # this process's cores
    with pytest.raises(EmavfiError, match="--threads must be 1 or more"):
        thread_budget(0)


def test_the_codecs_get_their_share(tmp_path: Path):
    clip = make_video(tmp_path / "clip.mp4", count=4)
    info = reader.probe(clip)
    sink = writer.VideoSink(
        tmp_path / "out.mp4", info, time_base=Fraction(1, 12), rate=Fraction(12), threads=3
    )
    try:
        assert sink._stream.codec_context.thread_count == 3
    finally:
        sink.abort()
    with reader._open(clip) as container:
        assert reader._video_stream(container, 2).codec_context.thread_count == 2


def test_threads_on_the_command_line(tmp_path: Path, capsys):
    clip = make_video(tmp_path / "clip.mp4", count=6)
    before = torch.get_num_threads()
    try:
        code = main(["interpolate", str(clip), "--model", "blend", "--quiet", "--threads", "4"])
        assert code == 0 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert len(decode(tmp_path / "clip.2x.mp4")[0]) == 12
    assert main(["interpolate", str(clip), "-o", str(tmp_path / "x.mp4"), "--threads", "0"]) == 2
    assert "--threads must be 1 or more" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
