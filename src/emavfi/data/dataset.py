"""The training Dataset: sources -> samples (ARCHITECTURE.md "Data samples"), and weighted mixing.

A source is a `SourceSpec` (``kind``, ``path``, ``weight``, options) or the short string
``"kind:path"``; the training config's ``sources: [{kind, path, weight, ...}]`` entries are the
same dicts. Kinds: those of `emavfi.data.sources` (``scenes``, ``vimeo``, ``triplet``,
``middlebury``, ``video``) and ``synthetic`` (path: a folder of texture images; options:
``length`` and the fields of `SyntheticConfig`).

Randomness comes from the configured seed only: sample ``i`` is drawn from a generator seeded by
``(seed, stream, i)``. The stream is the DataLoader worker's seed inside a worker (PyTorch derives
it from the loader's generator, which training seeds from ``(seed, epoch, rank)``), else the
dataset's ``epoch`` (`set_epoch`, called by the training loader). Torch's global seed plays no
part, so a dataset built in a fresh process gives the same samples every time.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from emavfi.config import bounded
from emavfi.data.augment import (
    DEFAULT_AUGMENTATION,
    AugmentConfig,
    augment_sample,
    fit_to_crop,
    random_crop,
)
from emavfi.data.sources import SOURCE_KINDS, FrameWindow, load_frame, open_source
from emavfi.data.synthetic import SyntheticConfig, SyntheticScenes
from emavfi.errors import EmavfiError
from emavfi.imageio import frames_to_tensor

logger = logging.getLogger(__name__)

MAX_RETRIES = 20
MAX_NAMED = 10_000  # bad files remembered (per process) so that each is named once
_named_failures: set[str] = set()


@dataclass(frozen=True)
class SourceSpec:
    """One training or validation source: layout ``kind``, its ``path`` (None for the kinds that
    read no files), mixing ``weight`` and kind-specific ``options``. The training config's
    ``sources`` and ``val_sources`` entries."""

    kind: str
    path: str | None = None
    weight: float = bounded(1.0, gt=0.0)
    options: dict[str, Any] = field(default_factory=dict)


def parse_source(spec: str | dict | SourceSpec) -> SourceSpec:
    """``"kind:path"``, ``{"kind", "path", "weight", **options}`` or a SourceSpec."""
    if isinstance(spec, SourceSpec):
        parsed = spec
    elif isinstance(spec, str):
        kind, sep, path = spec.partition(":")
        if not sep or not path.strip():
            raise EmavfiError(f"source {spec!r} is not 'kind:path'")
        parsed = SourceSpec(kind.strip(), path.strip())
    elif isinstance(spec, dict):
        options = {k: v for k, v in spec.items() if k not in ("kind", "path", "weight")}
        if "kind" not in spec or "path" not in spec:
            raise EmavfiError(f"source {spec!r} needs 'kind' and 'path'")
        parsed = SourceSpec(
            str(spec["kind"]), str(spec["path"]), float(spec.get("weight", 1.0)), options
        )
    else:
        raise EmavfiError(f"cannot read source {spec!r}: expected 'kind:path' or a mapping")
    if parsed.kind != "synthetic" and parsed.kind not in SOURCE_KINDS:
        known = ", ".join([*SOURCE_KINDS, "synthetic"])
        raise EmavfiError(f"unknown source kind {parsed.kind!r}; known: {known}")
    if not parsed.weight > 0:
        raise EmavfiError(
            f"source weight must be positive: {parsed.kind}:{parsed.path} has {parsed.weight}"
        )
    return parsed


def sample_rng(seed: int | None, epoch: int, index: int) -> np.random.Generator:
    """The generator of sample ``index``: from the dataset seed, the stream (the DataLoader
    worker's seed inside a worker, else ``epoch``) and the index."""
    worker = torch.utils.data.get_worker_info()
    stream = worker.seed if worker is not None else epoch
    return np.random.default_rng([seed or 0, stream, index])


class EpochSeeded:
    """Datasets whose draws depend on the epoch (``set_epoch``, like a DistributedSampler's)."""

    epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for part in getattr(self, "datasets", ()):
            if isinstance(part, EpochSeeded):
                part.set_epoch(epoch)


class WindowDataset(EpochSeeded, Dataset):
    """Samples from the windows of a source: random targets, random crop, augmentation.

    Frames that fail to decode are skipped (a warning names each file once per process, whichever
    dataset meets it; every skip is counted in ``skipped_files``, shared by all workers) and
    another window is drawn.
    """

    def __init__(
        self,
        windows: list[FrameWindow],
        targets_per_sample: int = 1,
        augment: AugmentConfig = DEFAULT_AUGMENTATION,
        seed: int | None = None,
    ) -> None:
        if not windows:
            raise EmavfiError("a training source has no windows")
        if targets_per_sample < 1:
            raise EmavfiError(f"targets_per_sample must be at least 1, got {targets_per_sample}")
        self.windows = windows
        self.targets_per_sample = targets_per_sample
        self.augment = augment
        self.seed = seed
        self._skipped = multiprocessing.get_context().Value("i", 0)

    @property
    def skipped_files(self) -> int:
        """How many undecodable frames were skipped so far, in all worker processes."""
        return self._skipped.value

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict:
        return self.draw(index, sample_rng(self.seed, self.epoch, index))

    def draw(self, index: int, rng: np.random.Generator) -> dict:
        """Sample ``index`` with its random choices drawn from ``rng``."""
        for _ in range(MAX_RETRIES):
            window = self.windows[index]
            try:
                return self._sample(window, rng)
            except EmavfiError as exc:
                with self._skipped.get_lock():
                    self._skipped.value += 1
                if str(exc) not in _named_failures and len(_named_failures) < MAX_NAMED:
                    _named_failures.add(str(exc))
                    logger.warning("skipping samples with a bad frame: %s", exc)
                index = int(rng.integers(len(self.windows)))
        raise EmavfiError(f"{MAX_RETRIES} windows in a row failed to load; last: {window.name}")

    def _sample(self, window: FrameWindow, rng: np.random.Generator) -> dict:
        count = len(window.targets)
        if count >= self.targets_per_sample:
            chosen = np.sort(rng.choice(count, self.targets_per_sample, replace=False))
        else:  # fewer distinct targets than K: repeat some
            chosen = np.concatenate(
                [np.arange(count), rng.integers(count, size=self.targets_per_sample - count)]
            )
        refs = [*window.inputs, *(window.targets[i][1] for i in chosen)]
        frames = [load_frame(ref) for ref in refs]
        if any(frame.shape != frames[0].shape for frame in frames):
            raise EmavfiError(f"frames of different sizes in {window.name}")
        frames = random_crop(
            fit_to_crop(frames, self.augment.crop_size), self.augment.crop_size, rng
        )
        targets = frames_to_tensor(np.stack(frames[2:]))
        height, width = targets.shape[-2:]
        sample = {
            "img0": frames_to_tensor(frames[0]),
            "img1": frames_to_tensor(frames[1]),
            "targets": targets,
            "timesteps": torch.tensor([window.targets[i][0] for i in chosen], dtype=torch.float32),
            "flow": torch.zeros(self.targets_per_sample, 4, height, width),
            "flow_valid": torch.zeros(self.targets_per_sample, 1, height, width),
        }
        return {**augment_sample(sample, self.augment, rng), "name": window.name}


class SyntheticDataset(EpochSeeded, Dataset):
    """``length`` samples per epoch of the synthetic scene stream, rendered at the crop size,
    with exact flows (new scenes every epoch, see the module docstring)."""

    def __init__(
        self,
        textures: str | Path,
        targets_per_sample: int = 1,
        augment: AugmentConfig = DEFAULT_AUGMENTATION,
        length: int = 1000,
        seed: int | None = None,
        config: SyntheticConfig | None = None,
    ) -> None:
        config = config or SyntheticConfig()
        if augment.crop_size is not None:
            config = dataclasses.replace(config, size=tuple(augment.crop_size))
        self.scenes = SyntheticScenes(textures, config, seed=seed or 0)
        self.targets_per_sample = targets_per_sample
        self.augment = dataclasses.replace(augment, crop_size=None)
        self.length = length
        self.seed = seed
        self.skipped_files = 0

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.draw(index, sample_rng(self.seed, self.epoch, index))

    def draw(self, index: int, rng: np.random.Generator) -> dict:
        """A new scene drawn from ``rng`` (``index`` only names it)."""
        drawn = self.scenes.sample_with(rng, self.targets_per_sample)
        sample = {
            "img0": torch.from_numpy(drawn.img0).permute(2, 0, 1),
            "img1": torch.from_numpy(drawn.img1).permute(2, 0, 1),
            "targets": torch.from_numpy(drawn.targets).permute(0, 3, 1, 2),
            "timesteps": torch.from_numpy(drawn.timesteps),
            "flow": torch.from_numpy(drawn.flow).permute(0, 3, 1, 2),
            "flow_valid": torch.from_numpy(drawn.flow_valid)[:, None],
        }
        return {**augment_sample(sample, self.augment, rng), "name": f"synthetic/{index}"}


class MixedDataset(EpochSeeded, Dataset):
    """Several datasets drawn with probabilities proportional to their weights, ``length``
    samples per epoch (each draw picks a dataset, then a random item of it)."""

    def __init__(
        self, parts: list[tuple[Dataset, float]], length: int, seed: int | None = None
    ) -> None:
        if not parts:
            raise EmavfiError("no training source given")
        weights = np.array([weight for _, weight in parts], dtype=np.float64)
        self.datasets = [dataset for dataset, _ in parts]
        self.probabilities = weights / weights.sum()
        self.length = length
        self.seed = seed

    @property
    def skipped_files(self) -> int:
        return sum(getattr(dataset, "skipped_files", 0) for dataset in self.datasets)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        rng = sample_rng(self.seed, self.epoch, index)
        dataset = self.datasets[int(rng.choice(len(self.datasets), p=self.probabilities))]
        item = int(rng.integers(len(dataset)))
        # the part continues this sample's generator: two draws of one item still differ
        return dataset.draw(item, rng) if hasattr(dataset, "draw") else dataset[item]


def _synthetic_dataset(
    spec: SourceSpec, targets_per_sample: int, augment: AugmentConfig, seed: int | None
) -> SyntheticDataset:
    options = dict(spec.options)
    length = int(options.pop("length", 1000))
    fields = {f.name for f in dataclasses.fields(SyntheticConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise EmavfiError(
            f"unknown synthetic option(s) {', '.join(unknown)} (allowed: length, {', '.join(sorted(fields))})"
        )
    tuples = {k: tuple(v) for k, v in options.items() if isinstance(v, list)}
    config = SyntheticConfig(**{**options, **tuples})
    return SyntheticDataset(spec.path, targets_per_sample, augment, length, seed, config)


def build_training_dataset(
    specs: list[str | dict | SourceSpec],
    targets_per_sample: int = 1,
    augment: AugmentConfig = DEFAULT_AUGMENTATION,
    length: int | None = None,
    seed: int | None = None,
) -> Dataset:
    """The Dataset of the given sources; several are mixed by weight (``length`` samples per
    epoch, default the sum of their lengths). Samples follow ARCHITECTURE.md "Data samples"."""
    parsed = [parse_source(spec) for spec in specs]
    parts = []
    for spec in parsed:
        if spec.kind == "synthetic":
            dataset = _synthetic_dataset(spec, targets_per_sample, augment, seed)
        else:
            windows = open_source(spec.kind, spec.path, **spec.options)
            dataset = WindowDataset(windows, targets_per_sample, augment, seed)
        logger.info(
            "source %s:%s: %d items, weight %g", spec.kind, spec.path, len(dataset), spec.weight
        )
        parts.append((dataset, spec.weight))
    if len(parts) == 1 and length is None:
        return parts[0][0]
    return MixedDataset(parts, length or sum(len(dataset) for dataset, _ in parts), seed)
