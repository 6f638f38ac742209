"""What a training run writes besides checkpoints: its config, TensorBoard logs, sample images and
the best model. Only rank 0 creates a ``RunOutputs`` that writes; other ranks get a silent one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from emavfi.imageio import to_uint8, write_image
from emavfi.tempfiles import atomic_write_text

logger = logging.getLogger(__name__)


class RunOutputs:
    """Writes the run folder (``checkpoint_path``): ``config.yaml``, ``tensorboard/``, plus the
    sample grids in ``output_image_path`` and the best model at ``best_model_path``."""

    def __init__(self, run_dir: Path, image_dir: Path, enabled: bool, tensorboard: bool) -> None:
        self.run_dir, self.image_dir, self.enabled = run_dir, image_dir, enabled
        self.writer = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        image_dir.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                logger.warning("tensorboard is not installed: no TensorBoard logs")
            else:
                self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def write_config(self, config: dict[str, Any]) -> None:
        """Copy the run's full config (after overrides) into the run folder."""
        if self.enabled:
            atomic_write_text(self.run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, step)

    def sample_grid(
        self, batch: dict[str, Tensor], pred: Tensor, step: int, max_rows: int = 4
    ) -> Path | None:
        """Save rows ``img0 | prediction | ground truth | img1 | 4x error`` of the first samples.

        ``pred``: ``(B*K, 3, H, W)`` predictions (first target of each sample is shown).
        """
        if not self.enabled:
            return None
        from torchvision.utils import make_grid

        num_targets = batch["targets"].shape[1]
        rows = min(max_rows, batch["img0"].shape[0])
        first_pred = pred.detach().float()[::num_targets][:rows].cpu()
        truth = batch["targets"][:rows, 0].float().cpu()
        tiles = [
            batch["img0"][:rows].float().cpu(),
            first_pred,
            truth,
            batch["img1"][:rows].float().cpu(),
            ((first_pred - truth).abs() * 4).clamp(0, 1),
        ]
        grid = make_grid(torch.stack(tiles, dim=1).flatten(0, 1), nrow=len(tiles), padding=2).clamp(
            0, 1
        )
        if self.writer is not None:
            self.writer.add_image("samples", grid, step)
        path = self.image_dir / f"step_{step:07d}.png"
        write_image(path, to_uint8(grid))
        return path

    def save_best(self, model: nn.Module, path: Path, training: dict[str, Any]) -> None:
        """Save ``model`` in our safetensors format at ``path`` (atomically)."""
        if not self.enabled:
            return
        from emavfi.models.checkpoints import save_checkpoint

        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(model, path, training=training)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
