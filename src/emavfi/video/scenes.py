"""Scene cuts (PySceneDetect's ContentDetector, fed our decoded frames) and duplicate frames.

Both work on a small 8-bit copy of each frame (at most ``ANALYSIS_WIDTH`` pixels wide): a cut or
a duplicate is a property of the whole picture, and 4K frames would make detection costly.
Frames are ``(H, W, 3)`` RGB, uint8 or uint16 (inputs of more than 8 bits).
"""

from __future__ import annotations

import numpy as np

ANALYSIS_WIDTH = 320
DEFAULT_CUT_THRESHOLD = 27.0  # PySceneDetect's default for ContentDetector
DUPLICATE_MAX_DIFF = 2.0  # grey levels, on 8x8 block means: compression noise, not motion


def _small(rgb: np.ndarray, width: int = ANALYSIS_WIDTH) -> np.ndarray:
    import cv2

    if rgb.dtype == np.uint16:
        rgb = (rgb >> 8).astype(np.uint8)
    height, full_width = rgb.shape[:2]
    if full_width <= width:
        return rgb
    return cv2.resize(
        rgb, (width, max(1, round(height * width / full_width))), interpolation=cv2.INTER_AREA
    )


class SceneCutDetector:
    """Feed every processed frame in order; ``is_cut(rgb)`` says whether a cut precedes it.

    Args:
        threshold: ContentDetector's threshold (higher: fewer cuts).
        fps: the input's rate (PySceneDetect's timecodes need one).
        min_scene_len: shortest scene reported, in frames. The default 0 (interpolation)
            disables PySceneDetect's flash filter, so a cut is reported on the frame it happens
            (the filter would delay or merge reports, which streaming cannot wait for); training
            data uses 3.
        width: frames wider than this are shrunk to it before detection.
    """

    def __init__(
        self,
        threshold: float = DEFAULT_CUT_THRESHOLD,
        fps: float = 25.0,
        min_scene_len: int = 0,
        width: int = ANALYSIS_WIDTH,
    ):
        import scenedetect
        from scenedetect.detectors import ContentDetector

        self._detector = ContentDetector(threshold=threshold, min_scene_len=min_scene_len)
        self._width = width
        self._timecode = getattr(scenedetect, "FrameTimecode", None)
        self._new_api = (
            int(scenedetect.__version__.split(".")[1]) >= 7 or scenedetect.__version__[0] != "0"
        )
        self._fps = float(fps)
        self._count = 0

    def is_cut(self, rgb: np.ndarray) -> bool:
        """``rgb``: (H, W, 3) uint8 RGB, the next frame. True if a cut lies before it."""
        bgr = np.ascontiguousarray(_small(rgb, self._width)[..., ::-1])
        position = self._timecode(self._count, self._fps) if self._new_api else self._count
        cuts = self._detector.process_frame(position, bgr)
        self._count += 1
        return self._count > 1 and bool(cuts)


def is_duplicate(rgb0: np.ndarray, rgb1: np.ndarray, max_diff: float = DUPLICATE_MAX_DIFF) -> bool:
    """Whether two (H, W, 3) uint8 frames show the same picture (up to compression noise).

    Compares 8x8-pixel block means of the grey image, so that a small moving object still
    counts as a change while codec noise does not.
    """
    import cv2

    if rgb0.shape != rgb1.shape:
        return False
    grey = [
        cv2.cvtColor(_small(x, 640), cv2.COLOR_RGB2GRAY).astype(np.float32) for x in (rgb0, rgb1)
    ]
    height, width = grey[0].shape
    size = (max(1, width // 8), max(1, height // 8))
    blocks = [cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in grey]
    return float(np.abs(blocks[0] - blocks[1]).max()) <= max_diff
