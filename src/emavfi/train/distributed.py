"""torchrun / DistributedDataParallel support: the same loop on one CPU, one GPU or many nodes.

Launch with ``torchrun --nproc_per_node N -m emavfi.cli.main train --config X``; torchrun sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``. The backend is NCCL on CUDA and gloo on the CPU.
Only rank 0 writes files (checkpoints, images, TensorBoard); every rank loads a checkpoint to
resume. Map-style datasets are split with ``DistributedSampler``; infinite (iterable) sources are
seeded per rank instead.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``, its ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """True on the one process that writes files and logs progress."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> the local CUDA device if there is one, else the CPU."""
    if name == "auto":
        return (
            torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
        )
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def init_distributed(device_name: str = "auto") -> DistInfo:
    """Join the torchrun process group if launched by torchrun, else a single-process DistInfo."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name, local_rank)
    if world_size <= 1:
        return DistInfo(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    info = DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device)
    logger.info("distributed: rank %d of %d on %s", info.rank, info.world_size, device)
    return info


def wrap_model(model: nn.Module, info: DistInfo) -> nn.Module:
    """The model wrapped in DistributedDataParallel when running distributed."""
    if not info.enabled:
        return model
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of ``value`` over all ranks (itself when not distributed)."""
    if not info.enabled:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world_size


def broadcast_flag(flag: bool, info: DistInfo) -> bool:
    """Rank 0's ``flag`` on every rank (so that all ranks stop together)."""
    if not info.enabled:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op when not distributed)."""
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Leave the process group."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
