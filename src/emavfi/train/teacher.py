"""Teachers for flow distillation: OpenCV DIS optical flow computed in the data workers, or a
Practical-RIFE network run on the training device (``RifeTeacher``, at the end of this module).

During training the target frame is known, so a classical flow method can see it: the teacher
computes the backward flows target->img0 and target->img1 (channels as in ARCHITECTURE.md:
``warp(img0, flow[:2])`` is img0 seen at time t) on every sample whose ``flow_valid`` is all zero
(sources without ground-truth flow). Its confidence is the forward-backward check of
``emavfi.flow.dis.consistency`` (the one the classical engine uses), with a tolerance that grows
with the motion and zero where the flow leaves the frame: with ``f`` = target->img0 and
``b`` = img0->target,

    w(x) = exp( -|f(x) + b(x + f(x))|^2 / (2 * (1 + 0.05 * |f(x)|)^2) )

so occlusions, where the two directions disagree, are weighted down.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, IterableDataset

from emavfi.flow import dis
from emavfi.models.contract import to_channel_order


class DISTeacher:
    """Computes ``(4, H, W)`` teacher flows and a ``(1, H, W)`` confidence for one target frame."""

    def __init__(self, preset: str = "medium") -> None:
        self.preset = preset

    def flows(self, img0: Tensor, img1: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """``img0``, ``img1``, ``target``: ``(3, H, W)`` RGB in [0, 1]. Returns ``flow (4, H, W)``
        in pixels (target->img0, target->img1) and ``confidence (1, H, W)`` in [0, 1]."""
        frames = dis.to_numpy_frames(torch.stack((target, img0, img1)))
        gray_t, gray0, gray1 = (dis.to_gray(frame) for frame in frames)
        flow_t0, conf0 = self._checked_flow(gray_t, gray0)
        flow_t1, conf1 = self._checked_flow(gray_t, gray1)
        flow = np.concatenate((flow_t0, flow_t1), axis=2).transpose(2, 0, 1)
        confidence = np.minimum(conf0, conf1)[None]
        return torch.from_numpy(np.ascontiguousarray(flow)), torch.from_numpy(confidence)

    def _checked_flow(self, source: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        forward = dis.dis_flow(source, other, self.preset)
        backward = dis.dis_flow(other, source, self.preset)
        confidence = dis.consistency(forward, backward, sigma=1.0, relative=0.05, zero_outside=True)
        return forward, confidence


def add_teacher_flows(sample: dict, teacher: DISTeacher) -> dict:
    """Fill ``flow``/``flow_valid`` of each target whose ``flow_valid`` is all zero (in place)."""
    targets = sample["targets"]
    num_targets, _, height, width = targets.shape
    if "flow" not in sample:
        sample["flow"] = torch.zeros(num_targets, 4, height, width)
        sample["flow_valid"] = torch.zeros(num_targets, 1, height, width)
    for k in range(num_targets):
        if bool(sample["flow_valid"][k].any()):
            continue  # ground truth wins over the teacher
        flow, confidence = teacher.flows(sample["img0"], sample["img1"], targets[k])
        sample["flow"][k] = flow
        sample["flow_valid"][k] = confidence
    return sample


class TeacherFlowDataset(Dataset):
    """Wraps a map-style dataset so that its samples get teacher flows (in the worker)."""

    def __init__(self, dataset: Dataset, teacher: DISTeacher) -> None:
        self.dataset, self.teacher = dataset, teacher

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return add_teacher_flows(self.dataset[index], self.teacher)


class TeacherFlowIterable(IterableDataset):
    """Wraps an iterable dataset so that its samples get teacher flows (in the worker)."""

    def __init__(self, dataset: IterableDataset, teacher: DISTeacher) -> None:
        self.dataset, self.teacher = dataset, teacher

    def __iter__(self):
        for sample in self.dataset:
            yield add_teacher_flows(sample, self.teacher)


class DeferredTeacher:
    """Zero flow and zero confidence: the flows are left to a teacher on the training device."""

    def flows(self, img0: Tensor, img1: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        height, width = target.shape[-2:]
        return torch.zeros(4, height, width), torch.zeros(1, height, width)


def with_teacher(dataset: Dataset, preset: str | None = "medium") -> Dataset:
    """``dataset`` wrapped so that samples without ground-truth flow get DIS teacher flows
    (``preset=None``: zero flows, filled later on the device by ``RifeTeacher``)."""
    teacher = DISTeacher(preset) if preset else DeferredTeacher()
    if isinstance(dataset, IterableDataset):
        return TeacherFlowIterable(dataset, teacher)
    return TeacherFlowDataset(dataset, teacher)


class RifeTeacher:
    """A Practical-RIFE v4 network run on the training device as the teacher (task-oriented flow
    distillation, as in IFRNet): its flows and fusion mask supervise the student where its frame is
    close to the ground truth.

    ``apply(batch)`` works on a device batch in the training layout (``img0``/``img1`` (B, 3, H, W)
    RGB, ``targets`` (B, K, 3, H, W), ``timesteps`` (B, K), optional ``flow``/``flow_valid``). For
    every target without ground-truth flow (``flow_valid`` all zero) it writes the teacher's flow
    and the per-pixel weight

        w(x) = exp(-e(x)^2 / (2 sigma^2)),  e = 5x5 mean of |teacher frame - ground truth|

    into ``flow``/``flow_valid``, and its mask into ``mask_target``/``mask_valid`` (synthetic
    samples with exact flow keep theirs and get no mask target). ``free_t`` of those samples
    instead take a new random timestep whose target is the teacher's own frame (real footage at
    any t, no ground truth), weighted ``free_t_weight``.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        channel_order: str = "BGR",
        sigma: float = 0.04,
        free_t: float = 0.0,
        free_t_weight: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.network = network.eval().requires_grad_(False)
        self.channel_order = channel_order
        self.sigma, self.free_t, self.free_t_weight = sigma, free_t, free_t_weight
        self.seed = seed

    @classmethod
    def from_file(cls, path: str, device: torch.device, **options) -> RifeTeacher:
        from emavfi.models.checkpoints import load_model

        network = load_model(path)
        return cls(network.to(device), network.spec.channel_order, **options)

    def _run(self, img0: Tensor, img1: Tensor, timesteps: Tensor):
        """The teacher's frame, flow and mask at ``timesteps``, padded (replicate) to its multiple."""
        order = self.channel_order
        height, width = img0.shape[-2:]
        multiple = self.network.spec.pad_multiple
        pad = (0, (-width) % multiple, 0, (-height) % multiple)
        inputs = [
            torch.nn.functional.pad(to_channel_order(x.float(), order), pad, mode="replicate")
            for x in (img0, img1)
        ]
        with torch.no_grad(), torch.autocast(img0.device.type, enabled=False):
            output = self.network(*inputs, timesteps.float(), return_aux=True)
        crop = (..., slice(0, height), slice(0, width))
        return to_channel_order(output.pred[crop], order), output.flow[crop], output.mask[crop]

    @torch.no_grad()
    def apply(self, batch: dict) -> dict:
        targets = batch["targets"]
        batch_size, num_targets, _, height, width = targets.shape
        if "flow" not in batch:
            batch["flow"] = targets.new_zeros(batch_size, num_targets, 4, height, width)
            batch["flow_valid"] = targets.new_zeros(batch_size, num_targets, 1, height, width)
        batch["mask_target"] = targets.new_zeros(batch_size, num_targets, 1, height, width)
        batch["mask_valid"] = targets.new_zeros(batch_size, num_targets, 1, height, width)
        needs = ~batch["flow_valid"].flatten(2).any(2)  # (B, K)
        if not bool(needs.any()):
            return batch
        rows, cols = needs.nonzero(as_tuple=True)
        img0, img1 = batch["img0"][rows], batch["img1"][rows]
        timesteps = batch["timesteps"][rows, cols].float()
        free = torch.zeros_like(timesteps, dtype=torch.bool)
        if self.free_t > 0:
            generator = torch.Generator(device=timesteps.device).manual_seed(self.seed)
            self.seed += 1
            free = (
                torch.rand(timesteps.shape, generator=generator, device=timesteps.device)
                < self.free_t
            )
            new_t = 0.05 + 0.9 * torch.rand(
                timesteps.shape, generator=generator, device=timesteps.device
            )
            timesteps = torch.where(free, new_t, timesteps)
        pred, flow, mask = self._run(img0, img1, timesteps)
        error = (pred - targets[rows, cols]).abs().mean(1, keepdim=True)
        error = torch.nn.functional.avg_pool2d(
            error, 5, stride=1, padding=2, count_include_pad=False
        )
        weight = torch.exp(-(error**2) / (2 * self.sigma**2))
        free_map = free.view(-1, 1, 1, 1)
        weight = torch.where(free_map, torch.full_like(weight, self.free_t_weight), weight)
        batch["targets"][rows, cols] = torch.where(
            free_map, pred.clamp(0, 1).to(targets.dtype), targets[rows, cols]
        )
        batch["timesteps"] = batch["timesteps"].clone().float()
        batch["timesteps"][rows, cols] = timesteps
        batch["flow"][rows, cols] = flow.to(batch["flow"].dtype)
        batch["flow_valid"][rows, cols] = weight.to(batch["flow_valid"].dtype)
        batch["mask_target"][rows, cols] = mask.to(targets.dtype)
        batch["mask_valid"][rows, cols] = weight.to(targets.dtype)
        return batch
