"""The training loop on a tiny model and a stand-in data set (conftest.py): learning, exact
resume, divergence handling, the time budget, early stopping, the best model and the CLI."""

from __future__ import annotations

import pytest
import torch

from emavfi import losses
from emavfi.cli.main import main
from emavfi.errors import EmavfiError
from emavfi.losses import LossConfig, TrainingLoss
from emavfi.models.checkpoints import load_model
from emavfi.models.registry import create_model
from emavfi.train import loop
from emavfi.train.data import collate_samples
from emavfi.train.loop import train
from emavfi.train.state import load_resume_checkpoint

from .conftest import SIZE, ShiftedTextures, tiny_config


def _fixed_batch_loss(model: torch.nn.Module) -> float:
    dataset = ShiftedTextures(4, 1, seed=99)
    batch = collate_samples([dataset[i] for i in range(4)])
    weights = LossConfig(
        vgg_weight=0,
        color_weight=0,
        gradient_weight=0,
        temporal_weight=0,
        laplacian_weight=0,
        flow_weight=0,
        charbonnier_weight=1.0,
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


def test_time_budget_too_short_to_train_writes_no_untrained_best(tmp_path, stand_in_data):
    result = train(tiny_config(tmp_path, "max_minutes=0.0001", "steps_per_epoch=50"))
    assert result.stop_reason.startswith("time budget") and result.step == 0
    assert "nothing trained" in result.stop_reason and result.best_model is None
    assert (tmp_path / "run" / "last.pt").is_file() and not (tmp_path / "best.safetensors").exists()


def test_validation_is_cut_to_fit_the_time_budget(tmp_path, stand_in_data, monkeypatch, caplog):
    real = loop.validate_psnr

    def slow(interpolator, items):  # as if each item took a quarter of the budget
        loop_clock["now"] += 0.25 * 60.0 * len(items)
        return real(interpolator, items)

    loop_clock = {"now": 0.0}
    monkeypatch.setattr(loop, "validate_psnr", slow)
    monkeypatch.setattr(loop.time, "monotonic", lambda: loop_clock["now"])
    cfg = tiny_config(tmp_path, "max_minutes=4", "val_max_items=8", "steps_per_epoch=3")
    with caplog.at_level("WARNING"):
        result = train(cfg)
    assert "validation cut to 4 of 8 items" in caplog.text
    assert result.step == 3 and result.best_model is not None  # it trained, then validated


def test_frames_that_fail_to_decode_are_counted_once_per_epoch(tmp_path, caplog):
    import cv2
    import numpy as np

    from tests.images import huge_png

    scene = tmp_path / "scenes" / "s"
    scene.mkdir(parents=True)
    for index in range(1, 9):
        image = np.full((32, 32, 3), 20 * index, np.uint8)
        cv2.imwrite(str(scene / f"frame{index:04d}.png"), image)
    huge_png(scene / "frame0004.png", 100000, 100000)
    cfg = tiny_config(
        tmp_path, f"train_data_dir={tmp_path / 'scenes'}", "num_epochs=2", "flow_teacher=none"
    )
    with caplog.at_level("WARNING"):
        train(cfg)
    totals = [r.getMessage() for r in caplog.records if "skipped because a frame" in r.getMessage()]
    assert (
        len(totals) == 2 and totals[0].startswith("epoch 1: ") and totals[1].startswith("epoch 2: ")
    )
    named = [r for r in caplog.records if "frame0004.png" in r.getMessage()]
    assert len(named) == 1


def test_a_killed_run_leaves_nothing_the_next_one_keeps(tmp_path, stand_in_data):
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    run = tmp_path / "run"
    run.mkdir()
    left = run / f".last.partial-{child.pid}-0badc0de.pt"  # what SIGKILL mid-save leaves
    left.write_bytes(b"")
    train(tiny_config(tmp_path, "checkpoint_interval=2"))
    assert not left.exists() and (run / "last.pt").is_file()
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]


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


def test_train_py_names_itself(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "train.py"
    result = subprocess.run(
        [sys.executable, str(script), "--set", "learning_rate=.inf"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "train.py: error: config key 'learning_rate': inf is impossible, it must be finite"
    ]


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


def test_device_scenes_and_rife_teacher_join_the_batches(tmp_path, stand_in_data):
    from emavfi.models.checkpoints import save_checkpoint
    from emavfi.train.distributed import init_distributed
    from tests.shared_paths import SHARED_DATA

    torch.manual_seed(0)
    teacher = create_model("rife-4.25", widths=[8, 8, 8, 8, 8])
    save_checkpoint(teacher, tmp_path / "teacher.safetensors")
    cfg = tiny_config(
        tmp_path,
        "batch_size=4",
        "flow_teacher=rife",
        f"teacher_weights={tmp_path / 'teacher.safetensors'}",
        "mask_weight=0.1",
        "device_scenes.fraction=0.5",
        f"device_scenes.textures={SHARED_DATA / 'textures'}",
        "steps_per_epoch=2",
    )
    trainer = loop.Trainer(cfg, init_distributed("cpu"))
    assert trainer.loader_batch == 2
    batch = trainer._device_samples(next(trainer._epoch_batches()))
    assert batch["img0"].shape[0] == 4 and batch["targets"].shape == (4, 1, 3, SIZE, SIZE)
    assert len(batch["name"]) == 4 and batch["name"][-1] == "device-scene"
    # the stand-in rows got the teacher (mask targets), the scenes kept their exact flow (no mask)
    assert batch["mask_valid"][:2].mean() > 0 and torch.all(batch["mask_valid"][2:] == 0)
    assert batch["flow_valid"][2:].mean() > 0.5
    result = train(cfg)
    assert result.step == 2 and result.stop_reason == "finished"


def test_time_budgeted_schedule_projects_its_end_from_the_speed(
    tmp_path, stand_in_data, monkeypatch
):
    from emavfi.train.distributed import init_distributed
    from emavfi.train.model_setup import make_scheduler

    trainer = loop.Trainer(tiny_config(tmp_path, "schedule_minutes=1"), init_distributed("cpu"))
    now = 1000.0
    monkeypatch.setattr(loop.time, "monotonic", lambda: now)
    trainer.start_time, trainer.step, trainer.run_steps_start = now - 30.0, 100, 0
    assert trainer._scheduled_steps() == 200  # 100 steps in 30 s, 30 s of the minute left
    trainer.train_seconds_before = 20.0  # an earlier run of this checkpoint used 20 s
    assert trainer._scheduled_steps() == 133
    trainer.train_seconds_before = 90.0  # past the budget: the cosine is over
    assert trainer._scheduled_steps() == 101
    # the scheduler reads the projection at every step
    total = [100]
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    cfg = tiny_config(tmp_path, "min_lr_ratio=0.1")
    scheduler = make_scheduler(optimizer, cfg, lambda: total[0])
    for _ in range(50):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.55, abs=0.01)
    total[0] = 50
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
