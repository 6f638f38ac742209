"""Atomic writes: every writer of the package goes through ``emavfi.tempfiles``, so an error
mid-write leaves the output as it was and no temporary file behind."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from emavfi.data.flo import write_flo
from emavfi.errors import EmavfiError
from emavfi.imageio import write_image
from emavfi.models.checkpoints import save_checkpoint
from emavfi.models.registry import create_model
from emavfi.tempfiles import atomic_path, atomic_write_bytes, atomic_write_text
from emavfi.train.outputs import RunOutputs
from emavfi.train.state import atomic_torch_save


def test_a_complete_write_replaces_the_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    atomic_write_text(path, "new ✓")
    assert path.read_text(encoding="utf-8") == "new ✓"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_an_error_mid_write_leaves_the_old_file_and_no_partial(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("killed mid-write")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_an_unwritable_folder_is_one_line(tmp_path):
    with pytest.raises(EmavfiError, match="cannot write to .*missing"):
        atomic_write_bytes(tmp_path / "missing" / "out.bin", b"x")


WRITERS = {
    "write_image": lambda path: write_image(
        path.with_suffix(".png"), np.zeros((4, 4, 3), np.uint8)
    ),
    "atomic_write_text": lambda path: atomic_write_text(path, "text"),
    "write_flo": lambda path: write_flo(path.with_suffix(".flo"), np.zeros((2, 2, 2), np.float32)),
    "save_checkpoint": lambda path: save_checkpoint(create_model("ema-tiny"), path),
    "atomic_torch_save": lambda path: atomic_torch_save({"step": 1}, path),
    "RunOutputs.write_config": lambda path: RunOutputs(
        path.parent, path.parent, enabled=True, tensorboard=False
    ).write_config({"seed": 0}),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_no_writer_leaves_a_partial_file(tmp_path, monkeypatch, name):
    """The rename fails (a full disk, a kill): nothing is left in the folder."""

    def fail(*args):
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="no space"):
        WRITERS[name](tmp_path / "out")
    assert os.listdir(tmp_path) == []


def test_writers_write(tmp_path):
    for name, write in WRITERS.items():
        folder = tmp_path / name
        folder.mkdir()
        write(folder / "out")
        assert [p for p in folder.iterdir() if not p.name.startswith(".")], name
        assert not [p for p in folder.iterdir() if p.name.startswith(".")], name
    assert torch.load(tmp_path / "atomic_torch_save" / "out")["step"] == 1
