"""Tiny fake datasets in tmp_path: a textured square moving across a textured background."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

SIZE = (32, 40)  # H, W: small, but larger than SSIM's 11x11 window


def moving_frame(position: float, seed: int = 0) -> np.ndarray:
    """HxWx3 uint8 RGB: a fixed noise background with a bright square at x = ``position``."""
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8), (5, 5), 0)
    frame = background.copy()
    left = round(position)
    frame[10:20, left : left + 10] = (230, 200, 40)
    return frame


def write_rgb(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(name="moving_frame")
def moving_frame_fixture():
    """The frame maker above, for tests that draw their own frames."""
    return moving_frame


@pytest.fixture
def triplet_root(tmp_path: Path) -> Path:
    """``<id>/frame_00, frame_01_gt, frame_02`` (the UCF101 layout), three items."""
    root = tmp_path / "triplets"
    for item in range(3):
        for index, name in enumerate(("frame_00", "frame_01_gt", "frame_02")):
            write_rgb(
                root / f"{item:03d}" / f"{name}.png", moving_frame(4 + 4 * index + item, seed=item)
            )
    return root


@pytest.fixture
def middlebury_root(tmp_path: Path) -> Path:
    root = tmp_path / "middlebury"
    for seq in ("Alpha", "Beta"):
        write_rgb(root / "other-data" / seq / "frame10.png", moving_frame(6))
        write_rgb(root / "other-data" / seq / "frame11.png", moving_frame(14))
        write_rgb(root / "other-gt-interp" / seq / "frame10i11.png", moving_frame(10))
    return root


@pytest.fixture
def vimeo_root(tmp_path: Path) -> Path:
    root = tmp_path / "vimeo_triplet"
    for seq in ("00001/0001", "00001/0002"):
        for index in range(1, 4):
            write_rgb(root / "sequences" / seq / f"im{index}.png", moving_frame(4 * index))
    (root / "tri_testlist.txt").write_text("00001/0001\n00001/0002\n")
    return root


@pytest.fixture
def scenes_root(tmp_path: Path) -> Path:
    root = tmp_path / "val"
    for index in range(1, 6):
        write_rgb(root / "scene1" / f"frame{index:04d}.png", moving_frame(2 + 3 * index))
    return root


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    """An 8-frame MPEG-4 clip (no scene cut)."""
    import av

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.height, stream.width, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        for index in range(8):
            frame = av.VideoFrame.from_ndarray(moving_frame(2 + 3 * index), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
