"""Training state: the EMA of the weights, RNG states and resumable checkpoints.

A resume checkpoint (``<checkpoint_path>/last.pt``) is a ``torch.save`` of plain dicts, lists,
numbers and tensors only, so that it loads with ``torch.load(weights_only=True)``. It is written
to a temporary file in the same folder and renamed, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from emavfi.errors import TORCH_LOAD_ERRORS, EmavfiError
from emavfi.tempfiles import atomic_path, remove_stale_temps


class WeightEMA:
    """Exponential moving average of a model's floating-point parameters and buffers.

    ``ema = decay * ema + (1 - decay) * weights`` after each optimizer step, with the decay
    warmed up as ``min(decay, (1 + step) / (10 + step))`` so early averages are not stuck at the
    random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {
            k: v.detach().clone().float()
            for k, v in model.state_dict().items()
            if v.is_floating_point()
        }

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (1.0 + step) / (10.0 + step))
        state = model.state_dict()
        keys = list(self.shadow)
        current = [state[k].detach().float() for k in keys]
        torch._foreach_lerp_([self.shadow[k] for k in keys], current, 1.0 - decay)

    def state_dict(self) -> dict[str, Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        for key, value in state.items():
            self.shadow[key].copy_(value)

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` (non-float buffers are left as they are)."""
        state = model.state_dict()
        for key, value in self.shadow.items():
            state[key].copy_(value)


def rng_state() -> dict[str, Any]:
    """Every RNG this process draws from, as weights_only-loadable data."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
        "python_gauss": random.getstate()[2],
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            *map(float, np_state[2:]),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` captured."""
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename over it. What a killed
    run left (SIGKILL) is removed first (``emavfi.tempfiles``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    with atomic_path(path, path.suffix) as tmp:
        torch.save(obj, tmp)


def load_resume_checkpoint(path: Path) -> dict[str, Any]:
    """Read a resume checkpoint written by the loop (never executes code from the file)."""
    if not path.is_file():
        raise EmavfiError(f"no checkpoint to resume from: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except TORCH_LOAD_ERRORS as exc:  # a damaged or foreign file is the user's to fix
        raise EmavfiError(f"cannot read checkpoint {path}: {exc.__class__.__name__}") from None
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise EmavfiError(f"{path} is not an emavfi training checkpoint")
    return state
