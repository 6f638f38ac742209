"""Middlebury ``.flo`` optical-flow files (Baker et al., IJCV 2011).

Layout: float32 magic 202021.25 ("PIEH"), int32 width, int32 height, then height x width x 2
float32 (u, v) in row order, little-endian. Values above 1e9 mark unknown flow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emavfi.errors import EmavfiError
from emavfi.tempfiles import atomic_write_bytes

MAGIC = 202021.25
HEADER_BYTES = 12
MAX_SIDE = 1 << 16
UNKNOWN_FLOW_THRESHOLD = 1e9


def read_flo(path: str | Path) -> np.ndarray:
    """Read a ``.flo`` file: HxWx2 float32 (x, y) in pixels. Corrupt files raise EmavfiError."""
    path = Path(path)
    if not path.is_file():
        raise EmavfiError(f"flow file not found: {path}")
    data = path.read_bytes()
    if len(data) < HEADER_BYTES:
        raise EmavfiError(f"not a .flo file (only {len(data)} bytes): {path}")
    magic = np.frombuffer(data, "<f4", 1, 0)[0]
    if magic != np.float32(MAGIC):
        raise EmavfiError(f"not a .flo file (magic {magic!r}, expected {MAGIC}): {path}")
    width, height = (int(v) for v in np.frombuffer(data, "<i4", 2, 4))
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise EmavfiError(f"corrupt .flo file (size {width}x{height}): {path}")
    expected = HEADER_BYTES + width * height * 2 * 4
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "has trailing bytes"
        raise EmavfiError(
            f"corrupt .flo file ({state}: {len(data)} bytes, expected {expected} for {width}x{height}): {path}"
        )
    return (
        np.frombuffer(data, "<f4", width * height * 2, HEADER_BYTES)
        .reshape(height, width, 2)
        .astype(np.float32)
    )


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """Write HxWx2 flow (x, y) as a ``.flo`` file (atomically: temp file, then rename)."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2 or min(flow.shape[:2]) < 1:
        raise EmavfiError(f"flow must be HxWx2, got shape {flow.shape}")
    path = Path(path)
    header = (
        np.array([MAGIC], "<f4").tobytes()
        + np.array([flow.shape[1], flow.shape[0]], "<i4").tobytes()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, header + flow.astype("<f4").tobytes())


def unknown_flow_mask(flow: np.ndarray) -> np.ndarray:
    """HxW bool: where the file marks the flow as unknown (either component above 1e9)."""
    return (np.abs(flow) > UNKNOWN_FLOW_THRESHOLD).any(axis=-1)
