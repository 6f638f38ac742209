"""Video interpolation speed: end to end per output frame, the model's share, the pipeline's own.

Measures, in one run and on the same generated clips (a texture panning a few pixels per frame,
H.264), the decode + encode floor (the pipeline with a model that copies its input), the weight-
free engines ``blend`` and ``classical``, and each model given with ``--models``. Each measurement
runs in its own process so that its peak memory (max RSS; CUDA peak too) is its own.

For every row: seconds per output frame end to end (``interpolate_video``, 2x), the seconds spent
inside the model's calls during that run, the model alone on the same decoded pairs (same
batches, no reader or writer thread running), and what ``emavfi interpolate`` adds over the model
alone. ``--stages`` also times the pipeline's own steps one after the other, without the model:
decode + YUV->RGB (PyAV), scene-cut and duplicate checks, uint8 <-> float tensors, RGB->YUV +
H.264 encode + mux. Reading and writing run in their own threads during a real run (they overlap
the model), so on 2 cores they still take processor time from it.
The run shares the cores as ``emavfi interpolate`` does (``emavfi.video.threads.thread_budget``:
torch gets those the decoder and encoder do not); the model alone runs on every core, as in
``benchmarks/model_speed.py``. The interpolator is warmed up on the clip's first pair before
timing (``--backend auto``'s one-time export and timing are not counted).

    python benchmarks/video_speed.py --frames 8 --sizes 480p 720p 1080p --models ema-cpu --stages
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080), "2160p": (3840, 2160)}
FLOOR = "decode+encode"


def make_clip(path: Path, size: tuple[int, int], frames: int) -> Path:
    """A smooth random texture panning 3 pixels per frame, as an H.264 clip at 25 fps.

    Smooth (blobs of about 32 pixels), so that the scene-cut detector sees motion, not cuts.
    """
    import av
    import cv2

    width, height = size
    rng = np.random.default_rng(0)
    wide = width + 3 * frames
    base = rng.integers(0, 256, (height // 32 + 2, wide // 32 + 2, 3), dtype=np.uint8)
    big = cv2.resize(base, (wide + 64, height + 64), interpolation=cv2.INTER_CUBIC)
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


class TimedInterpolator:
    """Wraps an interpolator; adds up the seconds spent in its calls."""

    def __init__(self, interpolator):
        self.interpolator, self.seconds = interpolator, 0.0

    def __call__(self, img0, img1, timesteps):
        started = time.perf_counter()
        out = self.interpolator(img0, img1, timesteps)
        self.seconds += time.perf_counter() - started
        return out


def make_model(engine: str, device: str, scale: float):
    from emavfi.interpolator import Interpolator

    if engine == FLOOR:
        return lambda img0, img1, timesteps: [img0 for _ in timesteps]
    if engine.startswith("random:"):  # speed does not depend on the weights' values
        from emavfi.models.registry import create_model

        return Interpolator(create_model(engine.split(":", 1)[1]), device=device, scale=scale)
    return Interpolator(engine, device=device, scale=scale)


def decoded(clip: Path) -> list:
    """The clip's frames as (H, W, 3) uint8 RGB arrays, through the pipeline's reader."""
    from emavfi.video import reader

    return [rgb for _, _, rgb in reader.read_frames(reader.probe(clip))]


def model_alone(model, frames: list, batch_size: int) -> float:
    """Seconds of the model on the clip's consecutive pairs, in the pipeline's batches."""
    from emavfi.imageio import frames_to_tensor, tensor_to_frames

    pairs = list(itertools.pairwise(frames))
    started = time.perf_counter()
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        img0 = frames_to_tensor(np.stack([p[0] for p in chunk]))
        img1 = frames_to_tensor(np.stack([p[1] for p in chunk]))
        tensor_to_frames(model(img0, img1, [0.5])[0], np.uint8)
    return time.perf_counter() - started


def measure_one(clip: Path, engine: str, device: str, scale: float) -> dict:
    """Interpolate ``clip`` 2x with ``engine`` in this process; timing and peak memory."""
    import torch

    from emavfi.imageio import frames_to_tensor
    from emavfi.video.pipeline import VideoOptions, interpolate_video
    from emavfi.video.threads import thread_budget

    frames = decoded(clip)
    own_threads = torch.get_num_threads()
    torch.set_num_threads(thread_budget().torch)  # as emavfi interpolate does
    model = make_model(engine, device, scale)
    model(
        frames_to_tensor(np.stack(frames[:1])), frames_to_tensor(np.stack(frames[1:2])), [0.5]
    )  # warm-up (auto's choice)
    timed = TimedInterpolator(model)
    out = clip.with_name(f"out_{engine.replace('/', '_')}.mp4")
    options = VideoOptions(factor=1, progress=False, scene_detect=True, overwrite=True)
    started = time.perf_counter()
    result = interpolate_video(clip, out, timed, options)
    seconds = time.perf_counter() - started
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # the run's
    # The model alone on every core, as in model_speed.py: built again, since a graph backend
    # keeps the thread count it was opened with.
    torch.set_num_threads(own_threads)
    alone_model = make_model(engine, device, scale)
    alone_model(
        frames_to_tensor(np.stack(frames[:1])), frames_to_tensor(np.stack(frames[1:2])), [0.5]
    )
    alone = model_alone(alone_model, frames, options.batch_size)
    peak_cuda = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {
        "s_per_frame": seconds / result.output_frames,
        "model_in_run": timed.seconds / result.output_frames,
        "model_alone": alone / result.output_frames,
        "backend": getattr(model, "last_backend", None),
        "backend_alone": getattr(alone_model, "last_backend", None),
        "frames": result.output_frames,
        "peak_rss_gib": peak_rss,
        "peak_cuda_gib": peak_cuda,
    }


def measure_stages(clip: Path) -> dict:
    """Seconds per output frame (2x) of each pipeline step alone, one after the other."""
    from fractions import Fraction

    from emavfi.imageio import frames_to_tensor, tensor_to_frames
    from emavfi.video import reader, writer
    from emavfi.video.scenes import SceneCutDetector, is_duplicate

    info = reader.probe(clip)
    started = time.perf_counter()
    frames = decoded(clip)
    decode = time.perf_counter() - started
    outputs = 2 * len(frames) - 1
    detector = SceneCutDetector(fps=float(info.rate))  # imports PySceneDetect: not timed
    started = time.perf_counter()
    for previous, frame in zip([None, *frames[:-1]], frames):
        detector.is_cut(frame)
        if previous is not None:
            is_duplicate(previous, frame)
    scenes = time.perf_counter() - started
    started = time.perf_counter()
    for frame0, frame1 in itertools.pairwise(frames):
        batch = frames_to_tensor(np.stack([frame0, frame1]))
        tensor_to_frames(batch[:1], np.uint8)
    tensors = time.perf_counter() - started
    sink = writer.VideoSink(
        clip.with_name("stages.mp4"),
        info,
        time_base=info.time_base / 2,
        rate=info.rate * 2,
        codec=writer.DEFAULT_CODEC,
        crf=writer.DEFAULT_CRF,
    )
    started = time.perf_counter()
    step = Fraction(1, 2 * info.rate)
    for index in range(outputs):
        sink.write((info.start + index * step, frames[(index + 1) // 2]))
    sink.commit()
    encode = time.perf_counter() - started
    return {
        "decode": decode / outputs,
        "scenes": scenes / outputs,
        "tensors": tensors / outputs,
        "encode": encode / outputs,
    }


def _run(arguments: list[str]) -> tuple[dict | None, str]:
    """Run this script with ``arguments`` in a fresh process: its JSON line, or the error."""
    done = subprocess.run(
        [sys.executable, __file__, *arguments], capture_output=True, text=True, check=False
    )
    if done.returncode:
        return None, "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:60]
    return json.loads(done.stdout.strip().splitlines()[-1]), ""


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
    parser.add_argument("--stages", action="store_true", help="also time each pipeline step")
    parser.add_argument("--one", nargs=2, metavar=("CLIP", "ENGINE"), help=argparse.SUPPRESS)
    parser.add_argument("--one-stages", metavar="CLIP", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(Path(args.one[0]), args.one[1], args.device, args.scale)))
        return
    if args.one_stages:
        print(json.dumps(measure_stages(Path(args.one_stages))))
        return
    rows, stage_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            clip = make_clip(Path(tmp) / f"clip_{size}.mp4", SIZES[size], args.frames)
            if args.stages:
                stages, error = _run(["--one-stages", str(clip)])
                stage_rows.append((size, stages, error))
            for engine in [FLOOR, *args.engines, *args.models]:
                options = ["--device", args.device, "--scale", str(args.scale)]
                m, error = _run(["--one", str(clip), engine, *options])
                rows.append((size, engine, m, error))
    print(
        f"\n{args.frames} input frames -> 2x, device {args.device}, scale {args.scale}; "
        "seconds per output frame\n"
    )
    print(
        "| size | engine / model | end to end | model in the run | model alone "
        "| added over the model alone | peak RSS (GiB) | peak CUDA (GiB) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, engine, m, error in rows:
        if m is None:
            print(f"| {size} | {engine} | {error} | | | | | |")
            continue
        name = f"{engine} ({m['backend']})" if m["backend"] else engine
        if m["backend_alone"] != m["backend"]:
            name += f", alone: {m['backend_alone']}"
        # only for a real model: a copy or an engine costs next to nothing alone
        added = (
            f"{m['s_per_frame'] / m['model_alone'] - 1:+.0%}" if m["model_alone"] > 0.05 else "-"
        )
        cuda = f"{m['peak_cuda_gib']:.2f}" if m["peak_cuda_gib"] is not None else "-"
        print(
            f"| {size} | {name} | {m['s_per_frame']:.3f} | {m['model_in_run']:.3f} "
            f"| {m['model_alone']:.3f} | {added} | {m['peak_rss_gib']:.2f} | {cuda} |"
        )
    if stage_rows:
        print("\nThe pipeline's own steps alone, seconds per output frame:\n")
        print(
            "| size | decode + YUV->RGB | scene cut + duplicate checks | uint8 <-> float "
            "| RGB->YUV + encode + mux | sum |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for size, st, error in stage_rows:
            if st is None:
                print(f"| {size} | {error} | | | | |")
                continue
            total = sum(st.values())
            print(
                f"| {size} | {st['decode']:.4f} | {st['scenes']:.4f} | {st['tensors']:.4f} "
                f"| {st['encode']:.4f} | {total:.4f} |"
            )


if __name__ == "__main__":
    main()
