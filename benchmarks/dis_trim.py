"""Would a cheaper DIS warm start keep ema-cpu's quality? The quality benchmark with DIS changed.

    python benchmarks/dis_trim.py fast --model ema-cpu --limit 20 --precision fp32 --backend torch
    python benchmarks/dis_trim.py half --model ema-cpu --limit 20 --precision fp32 --backend torch

The first argument picks the variant: ``fast`` or ``ultrafast`` (OpenCV's presets instead of
``medium``), ``half`` (DIS on frames shrunk by 2) or ``medium`` (the shipped one: a baseline in
the same conditions); the others are ``benchmarks/quality.py``'s. The variant replaces the DIS of
``emavfi.flow.dis`` in this process only (ema-cpu's warm start and the classical engine), so the
``classical`` row changes with it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2

from emavfi.flow import dis

VARIANTS = ("medium", "fast", "ultrafast", "half")


def dis_at_half_size(src_gray, dst_gray, preset="medium"):
    """DIS on frames shrunk by 2, its flow enlarged back (and its values doubled)."""
    height, width = src_gray.shape
    small = [
        cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        for image in (src_gray, dst_gray)
    ]
    flow = _full_size_dis(*small, preset)
    return cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * 2


_full_size_dis = dis.dis_flow


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in VARIANTS:
        print(f"usage: dis_trim.py {{{','.join(VARIANTS)}}} [quality.py options]", file=sys.stderr)
        return 2
    variant = sys.argv.pop(1)
    if variant == "half":
        dis.dis_flow = dis_at_half_size
    elif variant != "medium":
        dis.PRESETS["medium"] = dis.PRESETS[variant]
    sys.path.insert(0, str(Path(__file__).parent))
    import quality

    return quality.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
