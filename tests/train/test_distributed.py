"""Two-process torchrun runs on the CPU (gloo): a few steps, one checkpoint, rank 0 writes;
disjoint batches per rank and averaged gradients."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from emavfi.train.state import load_resume_checkpoint


def _write_scenes(root, scenes: int = 2, frames: int = 5, size: int = 48) -> None:
    rng = np.random.default_rng(0)
    for scene in range(scenes):
        texture = cv2.resize(
            rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), (size + 16, size + 16)
        )
        folder = root / f"scene{scene}"
        folder.mkdir(parents=True)
        for index in range(frames):
            cv2.imwrite(
                str(folder / f"frame{index + 1:04d}.png"),
                texture[index : index + size, 2 * index : 2 * index + size],
            )


def test_torchrun_two_processes_gloo(tmp_path):
    _write_scenes(tmp_path / "scenes")
    sets = [
        "model=ema-tiny",
        "batch_size=1",
        "crop_size=[32,32]",
        "num_epochs=1",
        "steps_per_epoch=2",
        "workers=0",
        "vgg_weight=0",
        "tensorboard=false",
        "device=cpu",
        "val_max_items=1",
        f"sources=[{{kind: scenes, path: {tmp_path / 'scenes'}}}]",
        f"val_sources=[{{kind: scenes, path: {tmp_path / 'scenes'}}}]",
        f"checkpoint_path={tmp_path / 'run'}",
        f"best_model_path={tmp_path / 'best.safetensors'}",
        f"output_image_path={tmp_path / 'images'}",
    ]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "emavfi.cli.main",
        "train",
        *[f"--set={item}" for item in sets],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("best model:") == 1  # only rank 0 reports
    assert "rank 1 of 2" in done.stderr
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.yaml", "last.pt"]
    state = load_resume_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 2 and state["epoch"] == 1
    assert (tmp_path / "best.safetensors").is_file()


def test_ranks_see_different_samples_and_average_their_gradients(tmp_path):
    """Two gloo ranks, the real Trainer (see ddp_worker.py): disjoint batches, and the gradient
    each applies is the mean of the two ranks' own gradients."""
    _write_scenes(tmp_path / "scenes", scenes=4)
    sets = [
        "model=ema-tiny",
        "batch_size=2",
        "crop_size=[32,32]",
        "workers=0",
        "vgg_weight=0",
        "grad_clip=0",  # clipping by each rank's own norm would break the mean
        "tensorboard=false",
        "device=cpu",
        f"sources=[{{kind: scenes, path: {tmp_path / 'scenes'}}}]",
        f"val_sources=[{{kind: scenes, path: {tmp_path / 'scenes'}}}]",
        f"checkpoint_path={tmp_path / 'run'}",
        f"best_model_path={tmp_path / 'best.safetensors'}",
        f"output_image_path={tmp_path / 'images'}",
    ]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "tests.train.ddp_worker",
        str(tmp_path),
        *[f"--set={item}" for item in sets],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, env=env, timeout=240, cwd=root
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    names = [set(rank["names"]) for rank in ranks]
    assert all(len(n) == 2 for n in names) and not names[0] & names[1]
    local = [rank["local"] for rank in ranks]
    scale = local[0].abs().max()
    assert (local[0] - local[1]).abs().max() > 1e-3 * scale  # different data, different gradients
    mean = (local[0] + local[1]) / 2
    for rank in ranks:
        assert torch.allclose(rank["ddp"], mean, rtol=1e-4, atol=1e-6 * scale)
