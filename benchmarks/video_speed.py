"""Video interpolation speed: seconds per output frame and peak memory, per engine/model and size.

Measures, in one run and on the same generated clips (a texture panning a few pixels per frame,
H.264), the decode + encode floor (the pipeline with a model that copies its input), the weight-
free engines ``blend`` and ``classical``, and each model given with ``--models``. Each measurement
runs in its own process so that its peak memory (max RSS; CUDA peak too) is its own.

    python benchmarks/video_speed.py --frames 8 --sizes 480p 720p 1080p --models ema-cpu
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080), "2160p": (3840, 2160)}
FLOOR = "decode+encode"


def make_clip(path: Path, size: tuple[int, int], frames: int) -> Path:
    """A panning texture (or a gradient if none is found) as an H.264 clip at 25 fps."""
    import av
    import numpy as np

    width, height = size
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height // 8 + 2, width // 8 + frames + 2, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(base, 8, axis=0), 8, axis=1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(big[:height, 3 * i : 3 * i + width]), format="rgb24"
            )
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def measure_one(clip: Path, engine: str, device: str, scale: float) -> dict:
    """Interpolate ``clip`` 2x with ``engine`` in this process; timing and peak memory."""
    import torch

    from emavfi.interpolator import Interpolator
    from emavfi.video.pipeline import VideoOptions, interpolate_video

    if engine == FLOOR:
        model = lambda img0, img1, timesteps: [img0 for _ in timesteps]
    elif engine.startswith("random:"):  # speed does not depend on the weights' values
        from emavfi.models.registry import create_model

        model = Interpolator(create_model(engine.split(":", 1)[1]), device=device, scale=scale)
    else:
        model = Interpolator(engine, device=device, scale=scale)
    out = clip.with_name(f"out_{engine.replace('/', '_')}.mp4")
    started = time.perf_counter()
    result = interpolate_video(
        clip, out, model, VideoOptions(factor=1, progress=False, scene_detect=False, overwrite=True)
    )
    seconds = time.perf_counter() - started
    peak_cuda = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {
        "s_per_frame": seconds / result.output_frames,
        "frames": result.output_frames,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "peak_cuda_gib": peak_cuda,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=8, help="input frames per clip (output: 2x)")
    parser.add_argument(
        "--sizes", nargs="+", default=["480p", "720p", "1080p"], choices=list(SIZES)
    )
    parser.add_argument(
        "--models",
        nargs="*",
        default=[],
        help="models or checkpoints besides the engines; random:NAME = untrained NAME",
    )
    parser.add_argument("--engines", nargs="*", default=["blend", "classical"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--one", nargs=2, metavar=("CLIP", "ENGINE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(Path(args.one[0]), args.one[1], args.device, args.scale)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            clip = make_clip(Path(tmp) / f"clip_{size}.mp4", SIZES[size], args.frames)
            for engine in [FLOOR, *args.engines, *args.models]:
                command = [
                    sys.executable,
                    __file__,
                    "--one",
                    str(clip),
                    engine,
                    "--device",
                    args.device,
                    "--scale",
                    str(args.scale),
                ]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode:
                    rows.append(
                        (
                            size,
                            engine,
                            "failed: " + done.stderr.strip().splitlines()[-1][:60],
                            "",
                            "",
                        )
                    )
                    continue
                m = json.loads(done.stdout.strip().splitlines()[-1])
                cuda = f"{m['peak_cuda_gib']:.2f}" if m["peak_cuda_gib"] is not None else "-"
                rows.append(
                    (size, engine, f"{m['s_per_frame']:.4f}", f"{m['peak_rss_gib']:.2f}", cuda)
                )
    print(f"\n{args.frames} input frames -> 2x, device {args.device}, scale {args.scale}\n")
    print("| size | engine / model | s per output frame | peak RSS (GiB) | peak CUDA (GiB) |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
