"""Turning downloads and videos into the scene-folder layout (``emavfi data prepare-middlebury``
and ``emavfi data extract``). Every file is written to a temp file and renamed when complete;
inputs are never modified.
"""

from __future__ import annotations

import io
import logging
import shutil
from pathlib import Path

import numpy as np

from emavfi.data.flo import read_flo
from emavfi.data.sources.base import frame_number, list_images, natural_key, read_image, require_dir
from emavfi.errors import EmavfiError
from emavfi.imageio import write_image
from emavfi.tempfiles import atomic_write_bytes

logger = logging.getLogger(__name__)

FRAME_DIRS = ("other-color-allframes/other-data", "other-color-allframes", "other-data")


def save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save``, atomically (the folder is made when missing)."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def _copy_frame(source: Path, target: Path) -> None:
    read_image(source)  # validate before copying
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, source.read_bytes())


def _frames_dir(src: Path) -> Path:
    for candidate in FRAME_DIRS:
        if (src / candidate).is_dir() and any(p.is_dir() for p in (src / candidate).iterdir()):
            return src / candidate
    raise EmavfiError(f"no Middlebury frames ({' or '.join(FRAME_DIRS)}) in {src}")


def prepare_middlebury(src: str | Path, dst: str | Path) -> list[Path]:
    """Middlebury download -> scene folders; returns the folders written.

    ``<Seq>/frameNNNN.png``: every frame of a sequence (kept numbers), when there are 3 or more;
    ``<Seq>-interp/frame0001..0003.png``: frame10, the ground truth frame10i11, frame11;
    ``<Seq>/flowNN.npy``: each ``other-gt-flow/<Seq>/flowNN.flo`` (HxWx2 float32, validated).
    """
    src, dst = require_dir(Path(src), "Middlebury"), Path(dst)
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise EmavfiError(f"destination {dst} must be outside the source {src}")
    frames_root, written = _frames_dir(src), []
    for seq_dir in sorted(
        (p for p in frames_root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)
    ):
        frames = [f for f in list_images(seq_dir) if frame_number(f) is not None]
        if len(frames) >= 3:
            for frame in frames:
                _copy_frame(frame, dst / seq_dir.name / f"frame{frame_number(frame):04d}.png")
            written.append(dst / seq_dir.name)
        gt = src / "other-gt-interp" / seq_dir.name / "frame10i11.png"
        if gt.is_file():
            triplet = (seq_dir / "frame10.png", gt, seq_dir / "frame11.png")
            for index, frame in enumerate(triplet, start=1):
                _copy_frame(frame, dst / f"{seq_dir.name}-interp" / f"frame{index:04d}.png")
            written.append(dst / f"{seq_dir.name}-interp")
        for flo in sorted((src / "other-gt-flow" / seq_dir.name).glob("*.flo")):
            save_npy(dst / seq_dir.name / f"{flo.stem}.npy", read_flo(flo))
    if not written:
        raise EmavfiError(f"no Middlebury sequence with 3 frames or a ground-truth frame in {src}")
    return written


def extract_video(
    video: str | Path,
    dst: str | Path,
    threshold: float = 27.0,
    min_scene_len: int = 3,
    min_frames: int = 3,
) -> list[tuple[Path, int]]:
    """Video -> ``dst/<stem>_sceneNNN/frameNNNNN.png``, cut at scene changes (PySceneDetect's
    content detector). Scenes shorter than ``min_frames`` are dropped. Returns (folder, frames)."""
    from emavfi.data.sources.video import DETECT_WIDTH, iter_video_frames, video_fps
    from emavfi.video.scenes import SceneCutDetector

    video, dst = Path(video), Path(dst)
    if not video.is_file():
        raise EmavfiError(f"video not found: {video}")
    detector = SceneCutDetector(threshold, video_fps(video), min_scene_len, width=DETECT_WIDTH)
    scenes: list[tuple[Path, int]] = []
    for frame in iter_video_frames(video):
        cut = detector.is_cut(frame)
        if cut or not scenes:
            _drop_if_short(scenes, min_frames)
            scenes.append((dst / f"{video.stem}_scene{len(scenes) + 1:03d}", 0))
        folder, count = scenes[-1]
        folder.mkdir(parents=True, exist_ok=True)
        write_image(folder / f"frame{count + 1:05d}.png", frame)
        scenes[-1] = (folder, count + 1)
    _drop_if_short(scenes, min_frames)
    if not scenes:
        raise EmavfiError(f"no scene of at least {min_frames} frames in {video}")
    return scenes


def _drop_if_short(scenes: list[tuple[Path, int]], min_frames: int) -> None:
    if scenes and scenes[-1][1] < min_frames:
        folder, count = scenes.pop()
        logger.info("dropping %s: %d frame(s) < %d", folder.name, count, min_frames)
        shutil.rmtree(folder, ignore_errors=True)
