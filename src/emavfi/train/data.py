"""The training run's data: the mixed training set, its DataLoader, and the validation items.

Training samples come from ``emavfi.data.dataset.build_training_dataset`` (the sources mix and the
augmentation keys of the config), wrapped with the DIS teacher (``teacher.py``) so that samples
without ground-truth flow get teacher flows in the worker processes. Validation reads whole
frames through ``emavfi.data.sources.open_source`` and ``load_frame``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset

from emavfi.data.dataset import SourceSpec
from emavfi.errors import EmavfiError
from emavfi.train.config import TrainConfig
from emavfi.train.distributed import DistInfo
from emavfi.train.teacher import with_teacher

logger = logging.getLogger(__name__)

_NO_DATA_HINT = (
    "make scene folders with `emavfi data extract VIDEO DST` or `emavfi data prepare-middlebury "
    "SRC DST`, or train on synthetic scenes: --set 'sources=[{kind: synthetic, path: TEXTURE_DIR}]'"
)


@dataclass
class ValItem:
    """One validation window: inputs ``(1, 3, H, W)`` and ``(timestep, ground truth)`` pairs."""

    name: str
    img0: Tensor
    img1: Tensor
    targets: list[tuple[float, Tensor]]


def check_sources_exist(sources: list[SourceSpec], key: str) -> None:
    """EmavfiError (one line with a way out) when a source's path does not exist."""
    for source in sources:
        if source.path is not None and not Path(source.path).exists():
            raise EmavfiError(
                f"training data not found: {source.path} (config key {key}); {_NO_DATA_HINT}"
            )


def build_train_dataset(cfg: TrainConfig, seed: int) -> Dataset:
    """The mixed, augmented training set of ``cfg`` (teacher-wrapped unless ``flow_teacher: none``)."""
    sources = cfg.train_sources()
    check_sources_exist(sources, "sources" if cfg.sources else "train_data_dir")
    from emavfi.data.dataset import build_training_dataset

    dataset = build_training_dataset(
        sources, targets_per_sample=cfg.targets_per_sample, augment=augment_config(cfg), seed=seed
    )
    if cfg.flow_teacher == "none" or cfg.flow_weight == 0:
        return dataset
    if cfg.flow_teacher == "rife":  # zero flows here; the device teacher (loop) fills them
        return with_teacher(dataset, preset=None)
    return with_teacher(dataset, preset="fast" if cfg.flow_teacher == "dis-fast" else "medium")


def augment_config(cfg: TrainConfig, training: bool = True):
    """The data package's ``AugmentConfig`` from the config's augmentation keys (validation:
    only the crop). All-zero colour jitter switches jitter off."""
    from emavfi.data.augment import NO_AUGMENTATION, AugmentConfig

    if not training:
        return dataclasses.replace(NO_AUGMENTATION, crop_size=tuple(cfg.crop_size))
    return AugmentConfig(
        crop_size=tuple(cfg.crop_size),
        random_rotation=cfg.random_rotation,
        horizontal_flip=cfg.horizontal_flip,
        vertical_flip=cfg.vertical_flip,
        color_jitter=cfg.color_jitter if any(dataclasses.astuple(cfg.color_jitter)) else None,
        random_grayscale=cfg.random_grayscale,
        temporal_reversal=cfg.temporal_reversal,
    )


def build_loader(
    dataset: Dataset, cfg: TrainConfig, info: DistInfo, epoch: int, batch_size: int | None = None
) -> DataLoader:
    """A DataLoader whose order and worker seeds depend only on (seed, epoch, rank); ``batch_size``
    defaults to the config's (less when device scenes fill part of each batch)."""
    generator = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch, info.rank))
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch_seed(cfg.seed, epoch, info.rank))
    iterable = isinstance(dataset, IterableDataset)
    sampler = None
    if info.enabled and not iterable:
        sampler = DistributedSampler(
            dataset, info.world_size, info.rank, shuffle=True, seed=cfg.seed, drop_last=True
        )
        sampler.set_epoch(epoch)
    cuda = info.device.type == "cuda"
    workers = cfg.workers
    return DataLoader(
        dataset,
        batch_size=batch_size or cfg.batch_size,
        shuffle=not iterable and sampler is None,
        sampler=sampler,
        num_workers=workers,
        pin_memory=cuda,
        drop_last=True,
        generator=generator,
        prefetch_factor=4 if workers and cuda else None,
        collate_fn=collate_samples,
    )


def loader_batch_size(cfg: TrainConfig) -> int:
    """Samples per batch that come from the DataLoader (the rest are device scenes)."""
    fraction = cfg.device_scenes.fraction
    if fraction >= 1.0:
        return 0
    return max(1, round(cfg.batch_size * (1.0 - fraction))) if fraction > 0 else cfg.batch_size


def build_device_scenes(cfg: TrainConfig, device: torch.device, seed: int):
    """The ``SceneGenerator`` of ``device_scenes`` on ``device``, or None when off."""
    options = cfg.device_scenes
    if options.fraction <= 0:
        return None
    from emavfi.data.gpu_scenes import SceneGenerator, SceneOptions, load_textures

    if not Path(options.textures).is_dir():
        raise EmavfiError(f"config key 'device_scenes.textures': no folder {options.textures}")
    scene_options = SceneOptions(
        max_layers=options.max_layers,
        max_motion=options.max_motion,
        static_fraction=options.static_fraction,
        max_deform=options.max_deform,
    )
    return SceneGenerator(load_textures(options.textures, device), scene_options, seed=seed)


def build_device_teacher(cfg: TrainConfig, device: torch.device, seed: int):
    """The ``RifeTeacher`` of ``flow_teacher: rife`` on ``device``, or None."""
    if cfg.flow_teacher != "rife":
        return None
    from emavfi.train.teacher import RifeTeacher

    return RifeTeacher.from_file(
        cfg.teacher_weights, device, sigma=cfg.teacher_sigma, free_t=cfg.teacher_free_t, seed=seed
    )


def concat_batches(first: dict, second: dict) -> dict:
    """Samples of ``second`` appended to ``first`` (keys of ``second``; ``first`` may be empty)."""
    if not first:
        return second
    batch_size = len(second["img0"])
    merged = {}
    for key, value in second.items():
        if key not in first:
            raise EmavfiError(
                f"training batch: the data sources give no {key!r} for device scenes to join"
            )
        merged[key] = torch.cat((first[key].to(value.dtype), value))
    if "name" in first:
        merged["name"] = list(first["name"]) + ["device-scene"] * batch_size
    return merged


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one epoch on one rank (distinct for every pair)."""
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729) % 2**63


def collate_samples(samples: list[dict]) -> dict:
    """Stack the tensors of the sample dicts; ``name`` becomes a list of strings."""
    batch = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        batch[key] = torch.stack(values) if isinstance(values[0], Tensor) else values
    if "timesteps" in batch and batch["timesteps"].dim() == 1:  # sources giving a scalar t
        batch["timesteps"] = batch["timesteps"][:, None]
    return batch


def load_val_items(cfg: TrainConfig) -> list[ValItem]:
    """Up to ``val_max_items`` windows of the validation sources (empty if none exist)."""
    from emavfi.data.sources import load_frame, open_source
    from emavfi.imageio import frames_to_tensor

    items: list[ValItem] = []
    for source in cfg.validation_sources():
        if source.path is None or not Path(source.path).exists():
            logger.warning("validation data not found: %s", source.path)
            continue
        if source.kind == "synthetic":  # no files: fixed, unaugmented held-out scenes
            from emavfi.data.dataset import build_training_dataset

            dataset = build_training_dataset(
                [source],
                cfg.targets_per_sample,
                augment_config(cfg, training=False),
                seed=cfg.seed + 7_777_777,
            )
            items += val_items_from_dataset(dataset, cfg.val_max_items - len(items))
            continue
        windows = open_source(source.kind, source.path, **source.options)
        step = max(1, len(windows) // cfg.val_max_items)
        skipped = 0
        for window in windows[::step][: cfg.val_max_items - len(items)]:
            try:
                frame0, frame1 = (frames_to_tensor(load_frame(ref))[None] for ref in window.inputs)
                targets = [
                    (float(t), frames_to_tensor(load_frame(ref))[None]) for t, ref in window.targets
                ]
            except EmavfiError as exc:  # as in training: skip it, name it, count it
                skipped += 1
                logger.warning("validation: skipping %s: %s", window.name, exc)
                continue
            items.append(ValItem(window.name, frame0, frame1, targets))
        if skipped:
            logger.warning(
                "validation: %d window(s) of %s skipped (a frame failed to decode)",
                skipped,
                source.path,
            )
    return items


def val_items_from_dataset(dataset: Dataset, count: int) -> list[ValItem]:
    """``count`` fixed samples of a (held-out seeded) training set, used when no validation data."""
    items = []
    samples = (
        iter(dataset)
        if isinstance(dataset, IterableDataset)
        else (dataset[i] for i in range(len(dataset)))
    )
    for index, sample in zip(range(count), samples):
        targets = [
            (float(t), gt[None])
            for t, gt in zip(sample["timesteps"].reshape(-1), sample["targets"])
        ]
        items.append(
            ValItem(f"heldout/{index}", sample["img0"][None], sample["img1"][None], targets)
        )
    return items
