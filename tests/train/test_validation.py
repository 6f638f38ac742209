"""Training in the model's channel order, and validation measured as `emavfi eval` measures it.

The bug these guard: fine-tuning ``ema-small`` (BGR) from a published ``.pkl`` fed RGB frames to
the network and validated them with the loop's own padding and PSNR, while the saved checkpoint
said BGR: the validation figure was not what ``emavfi eval`` then reported.
"""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch

from emavfi.cli.main import main
from emavfi.models.checkpoints import load_model, save_checkpoint
from emavfi.models.registry import create_model
from emavfi.train import loop
from emavfi.train.data import collate_samples
from emavfi.train.distributed import DistInfo
from emavfi.train.model_setup import build_model

from .conftest import ShiftedTextures, tiny_config

TINY_SMALL = "model_overrides={width: 4, depths: [1, 1, 1, 2, 2]}"  # ema-small's spec, tiny


def _published_pkl(path) -> None:
    """A tiny ``ema-small``-like checkpoint as the authors saved theirs (``module.`` prefixes)."""
    torch.manual_seed(1)
    model = create_model("ema-small", width=4, depths=[1, 1, 1, 2, 2])
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)


def _write_scenes(root, scenes: int = 2, frames: int = 3, size: int = 40) -> None:
    """Scene folders of colourful frames (red and blue differ) moving 3 px per frame."""
    rng = np.random.default_rng(0)
    for scene in range(scenes):
        texture = cv2.resize(
            rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (size + 16, size + 16)
        )
        folder = root / f"scene{scene}"
        folder.mkdir(parents=True)
        for index in range(frames):
            crop = texture[index : index + size, 3 * index : 3 * index + size]
            cv2.imwrite(str(folder / f"frame{index + 1:04d}.png"), crop)


def test_bgr_fine_tune_is_saved_bgr_and_validates_as_eval_measures(tmp_path, stand_in_data):
    pkl, val = tmp_path / "published.pkl", tmp_path / "val"
    _published_pkl(pkl)
    _write_scenes(val)  # 2 windows = val_max_items: validation and eval see the same items
    cfg = tiny_config(
        tmp_path,
        "model=ema-small",
        TINY_SMALL,
        f"init_weights={pkl}",
        f"val_data_dir={val}",
        "steps_per_epoch=1",
    )
    result = loop.train(cfg)
    best = load_model(str(result.best_model))
    assert best.spec.channel_order == "BGR"
    out = tmp_path / "eval"
    args = ["eval", "--model", str(result.best_model), "--dataset", f"scenes:{val}"]
    assert main([*args, "--device", "cpu", "-o", str(out), "--no-html"]) == 0
    report = json.loads((out / "results.json").read_text())
    assert len(report["samples"]) == 2
    assert result.best_psnr == pytest.approx(report["summary"]["overall"]["best"]["psnr"], abs=1e-9)


def test_the_network_is_fed_its_channel_order_and_the_losses_get_rgb(tmp_path, stand_in_data):
    cfg = tiny_config(tmp_path, "model=ema-small", TINY_SMALL)
    trainer = loop.Trainer(cfg, DistInfo(device=torch.device("cpu")))
    assert trainer.spec.channel_order == "BGR"
    batch = collate_samples([ShiftedTextures(2)[i] for i in range(2)])
    fed, returned = [], []

    def record(module, args, out) -> None:  # returns None: the output is left as it is
        fed.append(args[0])
        returned.append(out.pred.detach())

    trainer.model.register_forward_hook(record)
    trainer._train_step(batch, loop._Meter(trainer.device))
    assert torch.equal(fed[0], batch["img0"].flip(1))
    assert torch.equal(trainer._last_pred.detach(), returned[0].flip(1))


def test_initial_weights_bring_their_channel_order(tmp_path):
    """A checkpoint saved as RGB stays RGB when training starts from it, whatever the registry's."""
    model = create_model("ema-small", width=4, depths=[1, 1, 1, 2, 2])
    model.spec = dataclasses.replace(model.spec, channel_order="RGB")
    save_checkpoint(model, tmp_path / "rgb.safetensors")
    cfg = tiny_config(
        tmp_path, "model=ema-small", TINY_SMALL, f"init_weights={tmp_path / 'rgb.safetensors'}"
    )
    assert build_model(cfg).spec.channel_order == "RGB"
    assert (
        build_model(tiny_config(tmp_path, "model=ema-small", TINY_SMALL)).spec.channel_order
        == "BGR"
    )
