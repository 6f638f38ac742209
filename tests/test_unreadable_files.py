"""A damaged, truncated or foreign weights file is the user's to fix: every reader of one raises
a one-line EmavfiError (the exceptions it catches are narrowed to ``TORCH_LOAD_ERRORS``)."""

from __future__ import annotations

import collections
import io
import pickle
import random

import pytest
import torch

from emavfi.errors import EmavfiError
from emavfi.evaluate.lpips import load_lpips
from emavfi.losses import VGGPerceptualLoss
from emavfi.models.checkpoints import load_model
from emavfi.train.state import load_resume_checkpoint


def _zip_checkpoint() -> bytes:
    buffer = io.BytesIO()
    torch.save({"step": torch.zeros(3)}, buffer)
    return buffer.getvalue()


def _legacy_checkpoint() -> bytes:
    buffer = io.BytesIO()
    torch.save({"step": torch.zeros(3)}, buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


DAMAGED = {
    "empty": b"",  # EOFError
    "text": b"hello world\n" * 10,  # KeyError (legacy format's magic number)
    "random": random.Random(1).randbytes(4000),  # UnpicklingError
    "random, read as an index": random.Random(2).randbytes(4000),  # IndexError
    "truncated zip": _zip_checkpoint()[:400],  # RuntimeError
    "truncated legacy": _legacy_checkpoint()[:-3],  # RuntimeError
    "foreign pickle": pickle.dumps(collections.Counter("abc")),  # UnpicklingError (not allowed)
}
READERS = {
    "resume checkpoint": (load_resume_checkpoint, ".pt"),
    "published checkpoint": (load_model, ".pkl"),
    "VGG weights": (VGGPerceptualLoss.create, ".pth"),
    "LPIPS weights": (load_lpips, ".pth"),
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("damage", DAMAGED)
def test_damaged_file_is_one_line_error(tmp_path, reader, damage):
    read, suffix = READERS[reader]
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(DAMAGED[damage])
    with pytest.raises(EmavfiError) as info:
        read(str(path) if reader == "VGG weights" else path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("reader", ["VGG weights", "LPIPS weights"])
def test_damaged_safetensors_is_one_line_error(tmp_path, reader):
    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(EmavfiError):
        READERS[reader][0](str(path) if reader == "VGG weights" else path)
