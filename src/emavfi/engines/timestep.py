"""Timestep normalisation shared by the engines."""

from __future__ import annotations

import torch


def as_timestep_tensor(timestep, like: torch.Tensor) -> torch.Tensor:
    """Float, (B,) or (B, 1, 1, 1) timestep -> (B, 1, 1, 1) tensor on ``like``'s device and dtype."""
    t = torch.as_tensor(timestep, dtype=like.dtype, device=like.device)
    if t.dim() == 0:
        t = t.expand(like.shape[0])
    return t.reshape(-1, 1, 1, 1)
