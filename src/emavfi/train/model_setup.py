"""Building what the loop optimises: the model (registry name + overrides, dropout, initial
weights), gradient checkpointing, AdamW with weight decay, and the warm-up + cosine schedule."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from emavfi.errors import EmavfiError
from emavfi.models.registry import create_model, get_spec
from emavfi.train.config import TrainConfig

logger = logging.getLogger(__name__)


def build_model(cfg: TrainConfig) -> nn.Module:
    """``create_model(cfg.model, **cfg.model_overrides)`` (+ ``dropout``), optionally initialised
    from ``cfg.init_weights`` (any file ``emavfi.models.checkpoints.load_model`` reads), whose
    channel order it then takes: the loop feeds the network in ``model.spec.channel_order``."""
    overrides = dict(cfg.model_overrides)
    if cfg.dropout > 0:
        if "dropout" not in get_spec(cfg.model).arch:
            raise EmavfiError(f"config key 'dropout': model {cfg.model!r} has no dropout argument")
        overrides["dropout"] = cfg.dropout
    model = create_model(cfg.model, **overrides)
    if not model.spec.learned:
        raise EmavfiError(f"config key 'model': {cfg.model!r} has no weights to train")
    if cfg.init_weights:
        from emavfi.models.checkpoints import load_model

        source = load_model(cfg.init_weights)
        try:
            model.load_state_dict(source.state_dict())
        except RuntimeError:
            raise EmavfiError(
                f"config key 'init_weights': {cfg.init_weights} does not fit {cfg.model!r}"
            ) from None
        model.spec = dataclasses.replace(model.spec, channel_order=source.spec.channel_order)
    return model


def enable_grad_checkpointing(model: nn.Module) -> int:
    """Recompute activations in backward (``torch.utils.checkpoint``) to save memory.

    Uses the model's own ``set_grad_checkpointing`` when it has one; otherwise every submodule
    whose class name ends in ``Block`` (transformer and conv blocks) is checkpointed. Returns the
    number of checkpointed modules.
    """
    if hasattr(model, "set_grad_checkpointing"):
        model.set_grad_checkpointing(True)
        return 1
    count = 0
    for module in model.modules():
        if type(module).__name__.endswith("Block") and not getattr(
            module, "_emavfi_checkpointed", False
        ):
            module.forward = _checkpointed(module, module.forward)
            module._emavfi_checkpointed = True
            count += 1
    logger.info("gradient checkpointing on %d blocks", count)
    return count


def _checkpointed(module: nn.Module, forward):
    def run(*args, **kwargs):
        if module.training and torch.is_grad_enabled():
            return checkpoint(forward, *args, use_reentrant=False, **kwargs)
        return forward(*args, **kwargs)

    return run


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on weight matrices and kernels only (not biases, norms, scalars)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = bool(torch.cuda.is_available() and decay and decay[0].is_cuda)
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, 0.999), fused=fused or None)


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Learning-rate multiplier: linear warm-up to 1 over ``warmup_steps``, then cosine decay to
    ``min_ratio`` at ``total_steps``."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int | Callable[[], int]
):
    """``LambdaLR`` with ``lr_factor`` (warm-up shortened to a tenth of a short run).

    ``total_steps`` may be a callable read at every step: a time-budgeted run (``schedule_minutes``)
    projects its total from the measured speed.
    """
    total = total_steps if callable(total_steps) else (lambda: total_steps)
    first = total()
    warmup = (
        min(cfg.warmup_steps, max(0, first // 10))
        if first < 10 * cfg.warmup_steps
        else cfg.warmup_steps
    )
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, warmup, total(), cfg.min_lr_ratio)
    )
