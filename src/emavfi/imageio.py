"""Reading and writing single images at the package's edge (uint8 RGB HxWx3 arrays).

Grayscale, RGBA and 16-bit images are converted, not rejected; writes are atomic (temp file in
the same folder, renamed when complete), so a failure never leaves a half-written image.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from emavfi.errors import EmavfiError


def read_image(path: str | Path) -> np.ndarray:
    """Read any image OpenCV decodes -> HxWx3 uint8 RGB."""
    path = Path(path)
    if not path.is_file():
        raise EmavfiError(f"image not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise EmavfiError(f"cannot decode image (not an image or corrupt): {path}")
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise EmavfiError(f"unsupported image sample type {image.dtype}: {path}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write an HxWx3 uint8 RGB image atomically; the format follows the file extension."""
    path = Path(path)
    ext = path.suffix.lower() or ".png"
    ok, encoded = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise EmavfiError(f"cannot encode an image as {ext!r}: {path}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=ext, dir=path.parent)
    except OSError as exc:
        raise EmavfiError(f"cannot write to {path.parent}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(encoded.tobytes())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; an image is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
