"""The training loop: AdamW, warm-up + cosine schedule, clipping, EMA, early stopping, resume.

``train(cfg, resume=False)`` runs one configuration on one CPU, one GPU or under torchrun. Each
step: forward with ``return_aux=True`` on the ``B*K`` targets (fed in the model's channel order,
its frames back in RGB), ``TrainingLoss``, backward, clip, skip the update if the gradient is not
finite (abort after ``max_nonfinite`` in a row), AdamW, schedule, EMA. Numbers are read back from
the device only every ``log_interval`` steps (the one per-step sync is the finiteness flag, as in
AMP's GradScaler). Validation PSNR (EMA weights, measured through ``Interpolator`` and
``emavfi.metrics`` as ``emavfi eval`` measures it) drives the best model and early stopping.
``max_minutes`` stops cleanly with a checkpoint, keeping time for the last validation; the
validation set is cut to fit a quarter of that budget, and a run stopped before its first step
writes no "best" model (it would be untrained). Samples skipped because a frame failed to decode
are counted, one total per epoch.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from emavfi import metrics
from emavfi.config import to_dict
from emavfi.errors import EmavfiError
from emavfi.imageio import tensor_to_frames
from emavfi.interpolator import Interpolator
from emavfi.losses import TrainingLoss
from emavfi.models.contract import InterpolationOutput, to_channel_order
from emavfi.train import data as train_data
from emavfi.train.config import TrainConfig
from emavfi.train.distributed import (
    DistInfo,
    barrier,
    broadcast_flag,
    cleanup,
    init_distributed,
    wrap_model,
)
from emavfi.train.model_setup import (
    build_model,
    enable_grad_checkpointing,
    make_optimizer,
    make_scheduler,
)
from emavfi.train.outputs import RunOutputs
from emavfi.train.state import (
    WeightEMA,
    atomic_torch_save,
    load_resume_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
)

logger = logging.getLogger(__name__)

VAL_BUDGET_SHARE = 0.25  # of max_minutes, at most, for one validation


@dataclass
class TrainResult:
    """How a run ended."""

    step: int
    epoch: int
    best_psnr: float | None
    stop_reason: str
    checkpoint: Path
    best_model: Path | None


def train(cfg: TrainConfig, resume: bool = False) -> TrainResult:
    """Train ``cfg``; ``resume`` continues exactly from ``<checkpoint_path>/last.pt``."""
    info = init_distributed(cfg.device)
    try:
        return Trainer(cfg, info).run(resume)
    finally:
        cleanup(info)


class Trainer:
    """One training run's objects and counters (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, info: DistInfo) -> None:
        self.start_time = time.monotonic()  # max_minutes counts set-up too
        self.cfg, self.info, self.device = cfg, info, info.device
        self.run_dir = Path(cfg.checkpoint_path)
        self.last_path = self.run_dir / "last.pt"
        seed_everything(cfg.seed + info.rank)
        self.scenes = train_data.build_device_scenes(
            cfg, self.device, seed=cfg.seed + 1000 * info.rank
        )
        self.loader_batch = train_data.loader_batch_size(cfg)
        self.dataset = (
            train_data.build_train_dataset(cfg, seed=cfg.seed + 1000 * info.rank)
            if self.loader_batch
            else None
        )
        self.teacher = train_data.build_device_teacher(
            cfg, self.device, seed=cfg.seed + 1000 * info.rank
        )
        self.model = build_model(cfg).to(self.device)
        self.eval_model = build_model(cfg).to(self.device).eval().requires_grad_(False)
        self.spec = self.model.spec
        # Validation measures the eval model the way `emavfi eval` does (padding, channel order).
        self.validator = Interpolator(self.eval_model, device=self.device)
        self._check_crop()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.set_float32_matmul_precision("high")  # TF32 matmuls (convolutions use it already)
            self.model.to(memory_format=torch.channels_last)
        if cfg.grad_checkpointing:
            enable_grad_checkpointing(self.model)
        self.ema = WeightEMA(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.ddp_model = wrap_model(self.model, info)
        self.loss_fn = TrainingLoss.create(cfg).to(self.device)
        self.steps_per_epoch = self._steps_per_epoch()
        self.total_steps = self.steps_per_epoch * cfg.num_epochs
        self.optimizer = make_optimizer(self.model, cfg)
        self.step = 0
        self.train_seconds_before = 0.0  # training time of earlier runs of this checkpoint (resume)
        self.run_steps_start = 0
        self.scheduler = make_scheduler(
            self.optimizer, cfg, self._scheduled_steps if cfg.schedule_minutes else self.total_steps
        )
        self.autocast_dtype = _autocast_dtype(cfg.precision, self.device)
        self.scaler = (
            torch.amp.GradScaler(self.device.type, init_scale=2.0**10)
            if self.autocast_dtype == torch.float16
            else None
        )
        self.outputs = RunOutputs(
            self.run_dir, Path(cfg.output_image_path), info.is_main, cfg.tensorboard
        )
        self.val_items = self._val_items()
        self.step = self.epoch = self.step_in_epoch = 0
        self.best_psnr: float | None = None
        self.bad_validations = self.nonfinite_in_row = 0
        self.val_seconds = 0.0
        self.skipped_reported = 0

    # ----- set-up helpers -----
    def _check_crop(self) -> None:
        multiple = self.spec.pad_multiple
        if any(side % multiple for side in self.cfg.crop_size):
            raise EmavfiError(
                f"config key 'crop_size': {self.cfg.crop_size} must be multiples of {multiple} for {self.cfg.model}"
            )

    def _steps_per_epoch(self) -> int:
        if self.cfg.steps_per_epoch:
            return self.cfg.steps_per_epoch
        if self.dataset is None or isinstance(self.dataset, torch.utils.data.IterableDataset):
            logger.info("infinite training source: steps_per_epoch not set, using 1000")
            return 1000
        steps = len(self.dataset) // (self.loader_batch * self.info.world_size)
        if steps < 1:
            raise EmavfiError(
                f"only {len(self.dataset)} training samples: fewer than batch_size x processes"
            )
        return steps

    def _val_items(self) -> list[train_data.ValItem]:
        items = train_data.load_val_items(self.cfg)
        if not items:
            logger.warning(
                "no validation data: validating on %d held-out training samples",
                self.cfg.val_max_items,
            )
            held_out = train_data.build_train_dataset(self.cfg, seed=self.cfg.seed + 7_777_777)
            items = train_data.val_items_from_dataset(held_out, self.cfg.val_max_items)
        return items

    def _scheduled_steps(self) -> int:
        """``schedule_minutes``: the step count at which the cosine ends, projected from this run's
        speed so that it ends when the training time of all runs together reaches the budget."""
        elapsed = time.monotonic() - self.start_time
        done = self.step - self.run_steps_start
        if done < 20 or elapsed <= 0:
            return max(self.total_steps, self.step + 1)
        remaining = self.cfg.schedule_minutes * 60.0 - self.train_seconds_before - elapsed
        return max(self.step + 1, int(self.step + done / elapsed * max(remaining, 0.0)))

    # ----- the run -----
    def run(self, resume: bool) -> TrainResult:
        if resume:
            self._load_resume()
        self.run_steps_start = self.step
        self.outputs.write_config(to_dict(self.cfg))
        if self.cfg.max_minutes is not None:
            self.val_seconds = self._budget_validation()
        reason = "finished"
        try:
            reason = self._epochs()
        finally:
            self.outputs.close()
        best = Path(self.cfg.best_model_path) if self.best_psnr is not None else None
        logger.info(
            "training stopped (%s) at step %d; best validation PSNR %s",
            reason,
            self.step,
            f"{self.best_psnr:.2f} dB" if self.best_psnr is not None else "n/a",
        )
        return TrainResult(self.step, self.epoch, self.best_psnr, reason, self.last_path, best)

    def _epochs(self) -> str:
        from tqdm import tqdm

        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not self.info.is_main,
            dynamic_ncols=True,
        )
        try:
            while self.epoch < self.cfg.num_epochs:
                reason = self._one_epoch(bar)
                if reason:
                    return reason
            return "finished"
        finally:
            bar.close()

    def _one_epoch(self, bar) -> str | None:
        loader_iter = self._epoch_batches()
        meter = _Meter(self.device)
        while self.step_in_epoch < self.steps_per_epoch:
            if self._out_of_time():
                self._end_validation_and_save()
                if self.step == 0:
                    return "time budget (max_minutes) too short for a first step: nothing trained"
                return "time budget (max_minutes) reached"
            batch = next(loader_iter)
            self._train_step(batch, meter)
            bar.update(1)
            if self.step % self.cfg.log_interval == 0:
                self._log(meter, bar)
            if self.cfg.sample_interval and self.step % self.cfg.sample_interval == 0:
                self.outputs.sample_grid(self._last_batch, self._last_pred, self.step)
            if self.cfg.checkpoint_interval and self.step % self.cfg.checkpoint_interval == 0:
                self.save_resume()
            if (
                self.cfg.val_interval
                and self.step % self.cfg.val_interval == 0
                and self._validate()
            ):
                return "early stopping"
        self.outputs.sample_grid(self._last_batch, self._last_pred, self.step)
        self._report_skipped()
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        stop = self._validate()
        self.save_resume()
        return "early stopping" if stop else None

    def _epoch_batches(self):
        """Batches of the current epoch, fast-forwarded past ``step_in_epoch`` on resume."""
        saved_rng = rng_state() if self.step_in_epoch else None
        seed_everything(train_data.epoch_seed(self.cfg.seed, self.epoch, self.info.rank))
        if self.dataset is None:  # device scenes only
            return _repeat({})
        loader = train_data.build_loader(
            self.dataset, self.cfg, self.info, self.epoch, self.loader_batch
        )
        batches = _cycle(loader)
        if saved_rng is not None:
            logger.info("resuming: skipping %d batches of epoch %d", self.step_in_epoch, self.epoch)
            for _ in range(self.step_in_epoch):
                next(batches)
            set_rng_state(saved_rng)
        return batches

    def _train_step(self, batch: dict, meter: _Meter) -> None:
        self.ddp_model.train()
        batch = {
            k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v
            for k, v in batch.items()
        }
        batch = self._device_samples(batch)
        img0, img1, timesteps = _flatten_targets(batch)
        with self._autocast():
            output = self._forward(img0, img1, timesteps)
            loss, terms = self.loss_fn(output, batch)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        finite = bool(
            torch.isfinite(grad_norm) & torch.isfinite(loss.detach())
        )  # the one per-step sync
        self._apply_update(finite, loss)
        self.step += 1
        self.step_in_epoch += 1
        self._last_pred, self._last_batch = output.pred, batch
        if finite:
            meter.add(loss, terms, output.pred, batch["targets"].flatten(0, 1), len(img0))

    def _forward(self, img0: Tensor, img1: Tensor, timesteps: Tensor) -> InterpolationOutput:
        """The network on RGB frames in its spec's channel order (the published BGR weights see
        BGR, as in ``Interpolator``); the output's frames come back in RGB for the losses."""
        order = self.spec.channel_order
        output = self.ddp_model(
            to_channel_order(img0, order),
            to_channel_order(img1, order),
            timesteps,
            return_aux=True,
        )
        return output.to_channel_order(order)

    def _device_samples(self, batch: dict) -> dict:
        """Adds the scenes rendered on the device to the loader's batch, then runs the device
        teacher (both optional, see ``device_scenes`` and ``flow_teacher: rife``)."""
        if self.scenes is not None:
            count = self.cfg.batch_size - self.loader_batch
            crop = tuple(self.cfg.crop_size)
            batch = (
                train_data.concat_batches(batch, self.scenes.sample(count, crop))
                if count
                else batch
            )
        if self.teacher is not None:
            batch = self.teacher.apply(batch)
        return batch

    def _apply_update(self, finite: bool, loss: Tensor) -> None:
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # skips the update itself when gradients overflowed
            self.scaler.update()
        elif finite:
            self.optimizer.step()
        if finite:
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update(self.model, self.step)
            self.nonfinite_in_row = 0
            return
        self.nonfinite_in_row += 1
        logger.warning(
            "non-finite loss or gradient at step %d: update skipped (%d in a row)",
            self.step,
            self.nonfinite_in_row,
        )
        if self.nonfinite_in_row >= self.cfg.max_nonfinite:
            raise EmavfiError(
                f"training diverged: {self.nonfinite_in_row} non-finite steps in a row at step {self.step}; "
                f"the last good checkpoint is {self.last_path} (try a lower learning_rate)"
            )

    def _autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _out_of_time(self) -> bool:
        if self.cfg.max_minutes is None:
            return False
        elapsed = time.monotonic() - self.start_time
        reserve = 1.5 * self.val_seconds + 5.0
        return broadcast_flag(elapsed + reserve > self.cfg.max_minutes * 60.0, self.info)

    @torch.no_grad()
    def _budget_validation(self) -> float:
        """Time one validation item; keep as many items as fit ``VAL_BUDGET_SHARE`` of the time
        budget (one warning if that is fewer). Returns the expected seconds of a validation."""
        if not self.val_items:
            return 0.0
        self.eval_weights()
        # warm-up first (cuDNN autotuning, lazy allocations), so that the timing is steady-state
        validate_psnr(self.validator, self.val_items[:1])
        started = time.monotonic()
        validate_psnr(self.validator, self.val_items[:1])
        per_item = max(time.monotonic() - started, 1e-6)
        fitting = max(1, int(VAL_BUDGET_SHARE * self.cfg.max_minutes * 60.0 / per_item))
        if fitting < len(self.val_items):
            logger.warning(
                "validation cut to %d of %d items to fit max_minutes (%.1f s per item)",
                fitting,
                len(self.val_items),
                per_item,
            )
            self.val_items = self.val_items[:fitting]
        return per_item * len(self.val_items)

    def _end_validation_and_save(self) -> None:
        if self.step > 0:  # before the first step there is nothing to validate
            self._validate()
        self.save_resume()

    def _report_skipped(self) -> None:
        """One line per epoch with the samples skipped because a frame failed to decode."""
        total = _skipped_samples(self.dataset)
        if self.info.is_main and total > self.skipped_reported:
            logger.warning(
                "epoch %d: %d sample(s) skipped because a frame failed to decode (%d in all)",
                self.epoch + 1,
                total - self.skipped_reported,
                total,
            )
        self.skipped_reported = total

    # ----- logging, validation, checkpoints -----
    def _log(self, meter: _Meter, bar) -> None:
        values = meter.read_and_reset()
        if not values:
            return
        values["lr"] = self.optimizer.param_groups[0]["lr"]
        bar.set_postfix(
            loss=f"{values['loss']:.4f}",
            psnr=f"{values['psnr']:.2f}",
            sps=f"{values['samples_per_s']:.1f}",
        )
        self.outputs.scalars({f"train/{k}": v for k, v in values.items()}, self.step)

    def eval_weights(self) -> nn.Module:
        """The eval model loaded with the EMA weights (or the current ones without EMA)."""
        self.eval_model.load_state_dict(self.model.state_dict())
        if self.ema is not None:
            self.ema.copy_to(self.eval_model)
        return self.eval_model

    @torch.no_grad()
    def _validate(self) -> bool:
        """Validation PSNR; saves the best model; True when early stopping says stop."""
        started = time.monotonic()
        self.eval_weights()
        psnr = validate_psnr(self.validator, self.val_items)
        self.val_seconds = time.monotonic() - started
        self.outputs.scalars({"val/psnr": psnr}, self.step)
        logger.info(
            "step %d: validation PSNR %.2f dB (%d items, %.1fs)",
            self.step,
            psnr,
            len(self.val_items),
            self.val_seconds,
        )
        stopping = self.cfg.early_stopping
        if self.step == 0:
            logger.info("no training step yet: no best model saved")
        elif self.best_psnr is None or psnr > self.best_psnr + stopping.min_delta:
            self.best_psnr, self.bad_validations = psnr, 0
            summary = {
                "step": self.step,
                "epoch": self.epoch,
                "val_psnr": round(psnr, 4),
                "config": to_dict(self.cfg),
            }
            self.outputs.save_best(self.eval_model, Path(self.cfg.best_model_path), summary)
        else:
            self.bad_validations += 1
        return stopping.patience > 0 and self.bad_validations >= stopping.patience

    def save_resume(self) -> None:
        """Write ``last.pt`` (rank 0 only), everything needed to continue exactly."""
        if self.info.is_main:
            state = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "ema": self.ema.state_dict() if self.ema else None,
                "scaler": self.scaler.state_dict() if self.scaler else None,
                "step": self.step,
                "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch,
                "best_psnr": self.best_psnr,
                "bad_validations": self.bad_validations,
                "rng": rng_state(),
                "model_name": self.cfg.model,
                "train_seconds": self.train_seconds_before + time.monotonic() - self.start_time,
            }
            atomic_torch_save(state, self.last_path)
        barrier(self.info)

    def _load_resume(self) -> None:
        state = load_resume_checkpoint(self.last_path)
        if state.get("model_name") != self.cfg.model:
            raise EmavfiError(
                f"{self.last_path} was trained as {state.get('model_name')!r}, not {self.cfg.model!r}"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.step_in_epoch = (
            state["step"],
            state["epoch"],
            state["step_in_epoch"],
        )
        self.best_psnr, self.bad_validations = state["best_psnr"], state["bad_validations"]
        self.train_seconds_before = float(state.get("train_seconds", 0.0))
        set_rng_state(state["rng"])
        logger.info("resumed from %s at step %d (epoch %d)", self.last_path, self.step, self.epoch)


def validate_psnr(interpolator: Interpolator, items: list[train_data.ValItem]) -> float:
    """Mean PSNR (dB) over the targets of ``items``, measured as ``emavfi eval`` measures it:
    ``interpolator`` pads, orders the channels and predicts, the frame is rounded to 8 bit
    (``tensor_to_frames``, as ``Interpolator.frames``) and ``emavfi.metrics.psnr`` scores it."""
    scores = []
    for item in items:
        preds = interpolator.interpolate(item.img0, item.img1, [t for t, _ in item.targets])
        for pred, (_, truth) in zip(preds, item.targets):
            scores.append(metrics.psnr(tensor_to_frames(pred[0]), truth))
    return sum(scores) / max(len(scores), 1)


class _Meter:
    """Running sums on the device; read (one sync) only at log intervals."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count, self.samples, self.started = 0, 0, time.monotonic()

    def add(
        self, loss: Tensor, terms: dict[str, Tensor], pred: Tensor, truth: Tensor, samples: int
    ) -> None:
        mse = (
            (pred.detach().float().clamp(0, 1) - truth.float())
            .pow(2)
            .flatten(1)
            .mean(1)
            .clamp_min(1e-10)
        )
        values = {"loss": loss.detach().float(), "psnr": (-10.0 * torch.log10(mse)).mean(), **terms}
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0) + value.float()
        self.count += 1
        self.samples += samples

    def read_and_reset(self) -> dict[str, float]:
        if not self.count:
            return {}
        values = {name: float(total) / self.count for name, total in self.sums.items()}
        values["samples_per_s"] = self.samples / max(time.monotonic() - self.started, 1e-9)
        self.reset()
        return values


def _flatten_targets(batch: dict) -> tuple[Tensor, Tensor, Tensor]:
    """Inputs repeated per target: ``(B*K, 3, H, W)`` twice and timesteps ``(B*K,)``."""
    num_targets = batch["targets"].shape[1]
    img0 = batch["img0"].repeat_interleave(num_targets, dim=0)
    img1 = batch["img1"].repeat_interleave(num_targets, dim=0)
    return img0, img1, batch["timesteps"].reshape(-1).float()


def _skipped_samples(dataset) -> int:
    """The ``skipped_files`` counter of ``dataset`` or of the dataset it wraps (the teacher)."""
    while dataset is not None:
        if hasattr(dataset, "skipped_files"):
            return int(dataset.skipped_files)
        dataset = getattr(dataset, "dataset", None)
    return 0


def _repeat(value):
    while True:
        yield value


def _cycle(loader):
    while True:
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise EmavfiError("the training data yielded no batch (fewer samples than batch_size?)")


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "off" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "auto" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16
