"""Reading and writing single images at the package's edge (uint8 RGB HxWx3 arrays), image
folders (which files are images, in which order), and the conversions between those arrays and
the package's float frames (``(B, 3, H, W)`` in [0, 1]).

Grayscale, RGBA and 16-bit images are converted, not rejected; writes are atomic (temp file in
the same folder, renamed when complete), so a failure never leaves a half-written image. The
size in a file's header is checked before its pixels are decoded: a header may claim any size.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

from emavfi.errors import EmavfiError
from emavfi.tempfiles import atomic_write_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Largest frame read (images and video): 2^27 pixels, e.g. 16384x8192; one such RGB frame is
# 384 MB and the networks need several times that. Side limit: 65535, as in JPEG and WebP.
MAX_FRAME_PIXELS = 2**27
MAX_FRAME_SIDE = 65535


def check_frame_size(width: int, height: int, what: str | Path) -> None:
    """EmavfiError unless a ``width`` x ``height`` frame is one we can hold (see MAX_FRAME_*)."""
    if not (0 < width <= MAX_FRAME_SIDE and 0 < height <= MAX_FRAME_SIDE) or (
        width * height > MAX_FRAME_PIXELS
    ):
        raise EmavfiError(
            f"{what}: {width}x{height} pixels is not a frame size we can read "
            f"(at most {MAX_FRAME_PIXELS:,} pixels, {MAX_FRAME_SIDE} per side)"
        )


def _check_header(path: Path) -> None:
    """Check the size the file's header claims, reading only the header (Pillow's ``open``)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # Pillow warns from 89M pixels; our limit decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
    except Image.DecompressionBombError:  # Pillow's own limit (above ours) was exceeded
        raise EmavfiError(
            f"{path}: the image header claims more than {MAX_FRAME_PIXELS:,} pixels"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return  # a format Pillow does not parse (or a broken header): OpenCV decides below
    check_frame_size(width, height, path)


def read_image(path: str | Path) -> np.ndarray:
    """Read any image OpenCV decodes -> HxWx3 uint8 RGB."""
    path = Path(path)
    if not path.is_file():
        raise EmavfiError(f"image not found: {path}")
    _check_header(path)
    data = np.fromfile(str(path), dtype=np.uint8)
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error:  # OpenCV's own checks (e.g. its pixel limit) on a header Pillow cannot read
        image = None
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


def frame_number(path: Path) -> int | None:
    """The last integer in a file's stem (``frame0012.png`` -> 12), or None."""
    numbers = re.findall(r"\d+", path.stem)
    return int(numbers[-1]) if numbers else None


def natural_key(text: str) -> tuple:
    """Sort key that orders ``"2" < "10"`` (numbers compared as numbers)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in frame-number (then natural) order:
    ``f1, f2, f10``, never the plain string order ``f1, f10, f2``."""
    images = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(
        images, key=lambda p: (frame_number(p) is None, frame_number(p) or 0, natural_key(p.name))
    )


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write an HxWx3 uint8 RGB image atomically; the format follows the file extension."""
    path = Path(path)
    ext = path.suffix.lower() or ".png"
    ok, encoded = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise EmavfiError(f"cannot encode an image as {ext!r}: {path}")
    atomic_write_bytes(path, encoded.tobytes())


# -- uint8 <-> float ---------------------------------------------------------------------------
_LEVELS = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """``(..., H, W, C)`` uint8 or uint16 frames -> ``(..., C, H, W)`` float32 in [0, 1] (a float
    array is taken as already in [0, 1])."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).movedim(-1, -3).float()
    return tensor / _LEVELS.get(frames.dtype, 1.0)  # a new tensor, never a view of ``frames``


def tensor_to_frames(images: torch.Tensor, dtype: np.dtype = np.uint8) -> np.ndarray:
    """``(..., 3, H, W)`` float in [0, 1] -> ``(..., H, W, 3)`` ``dtype`` (uint8 or uint16),
    clipped and rounded to the nearest level in float32 on the tensor's device (what is written)."""
    levels = _LEVELS[np.dtype(dtype)]
    values = images.detach().float().clamp(0, 1).mul(levels).round()
    return values.movedim(-3, -1).cpu().numpy().astype(dtype)


def to_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """An ``HxWx3`` uint8 array from uint8 or float-in-[0, 1] input, clipped and rounded exactly
    (in float64: the metrics' 8-bit frame, independent of the device and float precision).

    Accepts ``HxWx3`` arrays or ``(3, H, W)`` / ``(1, 3, H, W)`` tensors in [0, 1].
    """
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.dim() == 4:
            if tensor.shape[0] != 1:
                raise ValueError(f"expected one frame, got a batch of {tensor.shape[0]}")
            tensor = tensor[0]
        if tensor.dim() != 3 or tensor.shape[0] != 3:
            raise ValueError(f"expected a (3, H, W) tensor, got {tuple(tensor.shape)}")
        image = tensor.permute(1, 2, 0).float().numpy()
    array = np.asarray(image)
    if array.dtype == np.uint8:
        return array
    return np.clip(np.round(array.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
