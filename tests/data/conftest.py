"""Fake data layouts written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


def write_rgb(path: Path, image: np.ndarray) -> Path:
    """Write an HxWx3 uint8 RGB image (PNG or JPEG by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def numbered_frame(value: int, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    """A frame whose pixels all equal ``value`` (so a test can tell which frame it got)."""
    return np.full((*size, 3), value, dtype=np.uint8)


@pytest.fixture
def scene_root(tmp_path: Path) -> Path:
    """processed/{train,val}/<scene>/frameNNNN.png with pixel value 10 * frame number."""
    root = tmp_path / "processed"
    for split, scenes in (("train", {"a": 5, "b": 3}), ("val", {"c": 4})):
        for scene, count in scenes.items():
            for index in range(1, count + 1):
                write_rgb(
                    root / split / scene / f"frame{index:04d}.png", numbered_frame(10 * index)
                )
    return root


def backward_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` (HxWxC) sampled at ``x + flow(x)`` (HxWx2 pixels), bilinear, pixel centres at
    integers (EMA-VFI's warp with align_corners=True); outside samples are NaN."""
    import torch
    import torch.nn.functional as F

    height, width = flow.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    grid_x = (xs + flow[..., 0]) / (width - 1) * 2 - 1
    grid_y = (ys + flow[..., 1]) / (height - 1) * 2 - 1
    grid = torch.from_numpy(np.stack([grid_x, grid_y], axis=-1)[None])
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))[None]).float()
    warped = F.grid_sample(tensor, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    result = warped[0].numpy().transpose(1, 2, 0)
    outside = (np.abs(grid_x) > 1) | (np.abs(grid_y) > 1)
    result[outside] = np.nan
    return result
