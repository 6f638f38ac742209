"""Image files with a crafted header, for the tests of every reader of images."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(path: Path, width: int, height: int, color_type: int = 2, bit_depth: int = 8) -> Path:
    """A PNG whose header claims ``width`` x ``height`` (any size) over a few bytes of data;
    small sizes get all their rows (zeros), so that the file decodes."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color_type, 3)
    row = 1 + width * channels * max(1, bit_depth // 8)
    rows = b"\x00" * (row * height) if row * height <= 1 << 16 else b"\x00" * 64
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )
    return path
