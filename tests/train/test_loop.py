"""The training loop on a tiny model and a stand-in data set (conftest.py): learning, exact
resume, divergence handling, the time budget, early stopping, the best model and the CLI."""

from __future__ import annotations

import pytest
import torch

from emavfi import losses
from emavfi.cli.main import main
from emavfi.errors import EmavfiError
from emavfi.losses import LossWeights, TrainingLoss
from emavfi.models.checkpoints import load_model
from emavfi.models.registry import create_model
from emavfi.train import loop
from emavfi.train.data import collate_samples
from emavfi.train.loop import train
from emavfi.train.state import load_resume_checkpoint

from .conftest import ShiftedTextures, tiny_config


def _fixed_batch_loss(model: torch.nn.Module) -> float:
    dataset = ShiftedTextures(4, 1, seed=99)
    batch = collate_samples([dataset[i] for i in range(4)])
    weights = LossWeights(
        vgg=0, color=0, gradient=0, temporal=0, laplacian=0, flow=0, charbonnier=1.0
    )
    with torch.no_grad():
        output = model(
            batch["img0"], batch["img1"], batch["timesteps"].reshape(-1), return_aux=True
        )
        return TrainingLoss(weights)(output, batch)[0].item()


def test_a_few_steps_lower_the_loss_and_save_a_loadable_best_model(tmp_path, stand_in_data):
    torch.manual_seed(0)
    cfg = tiny_config(tmp_path, "steps_per_epoch=8", "ema_decay=0")
    before = create_model("ema-tiny")
    torch.manual_seed(0)  # the trainer seeds with cfg.seed = 0: same initial weights
    result = train(cfg)
    assert result.step == 8 and result.stop_reason == "finished"
    best = load_model(str(result.best_model))
    assert best.spec.name == "ema-tiny"
    assert _fixed_batch_loss(best) < 0.9 * _fixed_batch_loss(before)
    assert (tmp_path / "run" / "config.yaml").is_file()
    assert list((tmp_path / "images").glob("step_*.png"))


def test_resume_continues_exactly(tmp_path, stand_in_data, monkeypatch):
    common = [
        "steps_per_epoch=5",
        "checkpoint_interval=3",
        "targets_per_sample=2",
        "flow_teacher=dis-fast",
    ]
    straight = train(tiny_config(tmp_path / "a", *common))

    real_step = loop.Trainer._train_step

    def crash_after_three(self, batch, meter):
        if self.step == 3:
            raise KeyboardInterrupt("simulated crash")  # between two checkpoints
        real_step(self, batch, meter)

    monkeypatch.setattr(loop.Trainer, "_train_step", crash_after_three)
    with pytest.raises(KeyboardInterrupt, match="simulated crash"):
        train(tiny_config(tmp_path / "b", *common))
    assert load_resume_checkpoint(tmp_path / "b" / "run" / "last.pt")["step"] == 3
    monkeypatch.setattr(loop.Trainer, "_train_step", real_step)
    resumed = train(tiny_config(tmp_path / "b", *common), resume=True)

    assert resumed.step == straight.step == 5
    state_a = load_resume_checkpoint(straight.checkpoint)
    state_b = load_resume_checkpoint(resumed.checkpoint)
    for part in ("model", "ema"):
        for key, value in state_a[part].items():
            assert torch.equal(value, state_b[part][key]), f"{part}.{key} differs after resume"
    exp_a = state_a["optimizer"]["state"][0]["exp_avg"]
    assert torch.equal(exp_a, state_b["optimizer"]["state"][0]["exp_avg"])
    assert state_a["scheduler"]["last_epoch"] == state_b["scheduler"]["last_epoch"]


def test_non_finite_losses_skip_then_abort_keeping_last_good_checkpoint(
    tmp_path, stand_in_data, monkeypatch
):
    real = losses.charbonnier
    calls = {"n": 0}

    def poisoned(pred, target, eps=1e-3):
        calls["n"] += 1
        value = real(pred, target, eps)
        return value * float("nan") if calls["n"] > 2 else value

    monkeypatch.setattr(losses, "charbonnier", poisoned)
    cfg = tiny_config(tmp_path, "steps_per_epoch=20", "checkpoint_interval=2", "max_nonfinite=3")
    good = None
    with pytest.raises(EmavfiError, match="non-finite steps in a row") as info:
        train(cfg)
    assert "last.pt" in str(info.value)
    good = load_resume_checkpoint(tmp_path / "run" / "last.pt")
    assert (
        good["step"] == 4
    )  # steps 3 and 4 were skipped; the checkpoint at 4 holds step 2's weights
    assert all(torch.isfinite(v).all() for v in good["model"].values())


def test_time_budget_stops_cleanly(tmp_path, stand_in_data):
    result = train(tiny_config(tmp_path, "max_minutes=0.0001", "steps_per_epoch=50"))
    assert result.stop_reason.startswith("time budget") and result.step == 0
    assert (tmp_path / "run" / "last.pt").is_file() and (tmp_path / "best.safetensors").is_file()


def test_early_stopping(tmp_path, stand_in_data):
    cfg = tiny_config(
        tmp_path,
        "num_epochs=5",
        "steps_per_epoch=1",
        "early_stopping.patience=1",
        "early_stopping.min_delta=100",
    )
    result = train(cfg)
    assert result.stop_reason == "early stopping" and result.epoch == 2


def test_cli_train(tmp_path, stand_in_data, capsys):
    sets = [f"--set={item}" for item in _tiny_sets(tmp_path)]
    assert main(["train", *sets]) == 0
    assert "best model:" in capsys.readouterr().out
    assert load_model(str(tmp_path / "best.safetensors")).spec.name == "ema-tiny"


def test_cli_missing_data_is_one_line(tmp_path, capsys):
    code = main(["train", "--set", f"train_data_dir={tmp_path / 'nowhere'}"])
    err = capsys.readouterr().err
    assert (
        code == 2
        and "training data not found" in err
        and "synthetic" in err
        and len(err.splitlines()) == 1
    )


def _tiny_sets(tmp_path):
    cfg = tiny_config(tmp_path)
    return [
        f"model={cfg.model}",
        "batch_size=2",
        "crop_size=[32,32]",
        "num_epochs=1",
        "steps_per_epoch=2",
        "workers=0",
        "vgg_weight=0",
        "tensorboard=false",
        f"checkpoint_path={cfg.checkpoint_path}",
        f"best_model_path={cfg.best_model_path}",
        f"output_image_path={cfg.output_image_path}",
        f"val_data_dir={cfg.val_data_dir}",
        "val_max_items=1",
    ]
