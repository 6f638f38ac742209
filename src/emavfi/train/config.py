"""TrainConfig: the typed form of ``config/train_config.yaml``.

The first block of fields are the original description's keys (same names, same meaning); the
rest are what the description recommends (weight decay, dropout, early stopping, clipping) and
what a real run needs. ``emavfi.config.load_config(TrainConfig, path, overrides)`` loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from emavfi.config import bounded
from emavfi.data.augment import ColorJitter
from emavfi.data.dataset import SourceSpec
from emavfi.errors import EmavfiError
from emavfi.losses import LossConfig


@dataclass
class EarlyStopping:
    """Stop when the validation metric has not improved for ``patience`` validations (0: off)."""

    patience: int = bounded(10, ge=0)
    metric: Literal["psnr"] = "psnr"
    min_delta: float = bounded(0.0, ge=0.0)


@dataclass
class DeviceScenes:
    """Synthetic scenes rendered on the training device (``emavfi.data.gpu_scenes``): this
    ``fraction`` of every batch, the rest from ``sources`` (1.0: scenes only). Motions in pixels."""

    fraction: float = bounded(0.0, ge=0.0, le=1.0)
    textures: str | None = None
    max_layers: int = bounded(4, ge=0, le=8)
    max_motion: float = bounded(64.0, ge=0.0)
    static_fraction: float = bounded(0.15, ge=0.0, le=1.0)
    max_deform: float = bounded(10.0, ge=0.0)


@dataclass
class TrainConfig(LossConfig):
    """Every training setting; see config/train_config.yaml for each key's meaning. The loss
    keys (``*_weight``, ``gradient_order``, ``temporal_alpha``, ``vgg_weights_path``) are
    ``emavfi.losses.LossConfig``'s fields."""

    # --- the original description's keys ---
    batch_size: int = bounded(2, ge=1)
    learning_rate: float = bounded(5e-5, gt=0.0)
    num_epochs: int = bounded(100, ge=1)
    train_data_dir: str = "data/processed/train"
    val_data_dir: str = "data/processed/val"
    checkpoint_path: str = "checkpoints"
    best_model_path: str = "best_ema_vfi.safetensors"
    output_image_path: str = "output_images"
    color_jitter: ColorJitter = field(default_factory=ColorJitter)
    crop_size: tuple[int, int] = bounded((256, 256), ge=8)
    random_rotation: bool = True
    horizontal_flip: bool = True
    random_grayscale: float = bounded(0.2, ge=0.0, le=1.0)
    # --- augmentation beyond the original keys ---
    vertical_flip: bool = False
    temporal_reversal: bool = True
    # --- what the description recommends ---
    weight_decay: float = bounded(1e-4, ge=0.0)
    dropout: float = bounded(0.0, ge=0.0, lt=1.0)
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    grad_clip: float = bounded(1.0, ge=0.0)
    # --- model ---
    model: str = "ema-cpu"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    init_weights: str | None = None
    # --- data ---
    sources: list[SourceSpec] = field(default_factory=list)
    val_sources: list[SourceSpec] = field(default_factory=list)
    val_max_items: int = bounded(32, ge=1)
    targets_per_sample: int = bounded(1, ge=1)
    workers: int = bounded(2, ge=0)
    seed: int = 0
    # --- schedule and numerics ---
    steps_per_epoch: int | None = bounded(None, ge=1)
    warmup_steps: int = bounded(200, ge=0)
    min_lr_ratio: float = bounded(0.02, ge=0.0, le=1.0)
    precision: Literal["auto", "bf16", "fp16", "off"] = "auto"
    ema_decay: float = bounded(0.999, ge=0.0, lt=1.0)
    grad_checkpointing: bool = False
    device: str = "auto"
    max_minutes: float | None = bounded(None, gt=0.0)
    schedule_minutes: float | None = bounded(None, gt=0.0)
    max_nonfinite: int = bounded(5, ge=1)
    # --- flow teacher ---
    flow_teacher: Literal["dis", "dis-fast", "rife", "none"] = "dis"
    teacher_weights: str | None = None
    teacher_sigma: float = bounded(0.04, gt=0.0)
    teacher_free_t: float = bounded(0.0, ge=0.0, le=1.0)
    device_scenes: DeviceScenes = field(default_factory=DeviceScenes)
    # --- logging and outputs ---
    log_interval: int = bounded(20, ge=1)
    val_interval: int = bounded(0, ge=0)
    sample_interval: int = bounded(0, ge=0)
    checkpoint_interval: int = bounded(500, ge=0)
    tensorboard: bool = True

    def validate(self) -> None:
        """Cross-key checks the per-key loader cannot do (raise EmavfiError naming the key)."""
        if len(self.crop_size) != 2:
            raise EmavfiError(
                f"config key 'crop_size': expected [height, width], got {self.crop_size}"
            )
        if not self.best_model_path.endswith(".safetensors"):
            raise EmavfiError(
                "config key 'best_model_path': the best model is saved in our safetensors format, "
                f"so the name must end in .safetensors (got {self.best_model_path!r})"
            )
        if self.flow_teacher == "rife" and not self.teacher_weights:
            raise EmavfiError(
                "config key 'teacher_weights': flow_teacher rife needs the teacher's checkpoint (e.g. flownet.pkl)"
            )
        if self.device_scenes.fraction > 0 and not self.device_scenes.textures:
            raise EmavfiError(
                "config key 'device_scenes.textures': a folder of texture images is needed"
            )
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise EmavfiError(
                f"config key 'device': expected auto, cpu or cuda[:N], got {self.device!r}"
            )

    def train_sources(self) -> list[SourceSpec]:
        """The training mix; empty ``sources`` means scene folders at ``train_data_dir``."""
        return self.sources or [SourceSpec(kind="scenes", path=self.train_data_dir)]

    def validation_sources(self) -> list[SourceSpec]:
        """The validation sources; empty ``val_sources`` means scenes at ``val_data_dir``."""
        return self.val_sources or [SourceSpec(kind="scenes", path=self.val_data_dir)]
