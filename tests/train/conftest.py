"""Fixtures for the training tests: a tiny config and a stand-in training set.

The stand-in (``ShiftedTextures``) is a private, deterministic map-style dataset of smooth random
textures moving by a few pixels, so that the training tests do not depend on the data package's
synthetic generator and run in seconds. Its random flip draws from torch's global RNG, which the
resume test needs to see restored.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from emavfi.config import load_config
from emavfi.train import data as train_data
from emavfi.train.config import TrainConfig

SIZE = 32


class ShiftedTextures(Dataset):
    """``count`` samples: a texture translated by (2, 1) px per unit time; K targets, exact flow."""

    def __init__(self, count: int = 16, targets_per_sample: int = 1, seed: int = 0) -> None:
        self.count, self.num_targets, self.seed = count, targets_per_sample, seed

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        gen = torch.Generator().manual_seed(self.seed * 1000 + index)
        base = F.interpolate(
            torch.rand(1, 3, 12, 12, generator=gen), size=(SIZE + 8, SIZE + 8), mode="bicubic"
        )
        base = base.clamp(0, 1)[0]
        timesteps = torch.linspace(0, 1, self.num_targets + 2)[1:-1]

        def at(t: float) -> torch.Tensor:
            dx, dy = round(4 * t), round(2 * t)
            return base[:, dy : dy + SIZE, dx : dx + SIZE]

        targets = torch.stack([at(float(t)) for t in timesteps])
        sample = {
            "img0": at(0.0),
            "img1": at(1.0),
            "targets": targets,
            "timesteps": timesteps,
            "flow": torch.zeros(self.num_targets, 4, SIZE, SIZE),
            "flow_valid": torch.zeros(self.num_targets, 1, SIZE, SIZE),
            "name": f"stand-in/{index}",
        }
        if torch.rand(()) < 0.5:  # global-RNG augmentation: horizontal flip of every frame
            for key in ("img0", "img1", "targets"):
                sample[key] = sample[key].flip(-1)
        return sample


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two OpenMP threads stall each other badly."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def stand_in_data(monkeypatch):
    """Route the trainer's dataset builder to ``ShiftedTextures`` (keeps the teacher wrapper)."""
    from emavfi.train.teacher import with_teacher

    def build(cfg: TrainConfig, seed: int):
        dataset = ShiftedTextures(16, cfg.targets_per_sample, seed)
        if cfg.flow_teacher == "none" or cfg.flow_weight == 0:
            return dataset
        return with_teacher(
            dataset, None if cfg.flow_teacher == "rife" else "fast"
        )  # rife: on the device

    monkeypatch.setattr(train_data, "build_train_dataset", build)
    return build


def tiny_config(tmp_path, *overrides: str) -> TrainConfig:
    """A few-second config on ema-tiny, everything written under ``tmp_path``."""
    base = [
        "model=ema-tiny",
        "batch_size=2",
        f"crop_size=[{SIZE},{SIZE}]",
        "num_epochs=1",
        "steps_per_epoch=4",
        "workers=0",
        "learning_rate=2e-3",
        "warmup_steps=0",
        "ema_decay=0.9",
        "val_max_items=2",
        "log_interval=2",
        "checkpoint_interval=0",
        "tensorboard=false",
        "vgg_weight=0",
        f"checkpoint_path={tmp_path / 'run'}",
        f"best_model_path={tmp_path / 'best.safetensors'}",
        f"output_image_path={tmp_path / 'images'}",
        f"train_data_dir={tmp_path / 'none'}",
        f"val_data_dir={tmp_path / 'none'}",
    ]
    return load_config(TrainConfig, None, base + list(overrides))
