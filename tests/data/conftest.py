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
                write_rgb(root / split / scene / f"frame{index:04d}.png", numbered_frame(10 * index))
    return root
