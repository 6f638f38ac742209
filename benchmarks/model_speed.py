"""Seconds per interpolated frame of models and engines, side by side in one run (model only).

    python benchmarks/model_speed.py --model ema-cpu rife-4.25 classical --size 1280x720
    python benchmarks/model_speed.py --model ema-cpu --backend torch onnxruntime openvino \\
        --precision fp32 bf16 --repeats 5
    python benchmarks/model_speed.py --model ema-cpu --device cuda --train --batch 32 --size 256x256

Every row goes through the Interpolator (its padding, channel order, DIS warm start and backend
included) on the packaged sample pair resized to the size (``--frames random`` for noise). All
rows are built and warmed up first (auto's one-time export and timing happen there), then timed
in turns, row after row, ``--repeats`` times: a machine whose speed drifts slows every row alike.
The median is reported, with the spread. Names without packaged weights get random weights (the
speed is the same); a checkpoint file given as a ``--model`` (Practical-RIFE's ``flownet.pkl``)
runs with its weights; ``--weights FILE`` times a checkpoint. A flow scale below 1 is also timed
with ``refine_at_scale`` (``--fast``). ``--train`` times one forward + backward step of a batch.
Runs from a source tree with PyTorch alone (``PYTHONPATH=src python benchmarks/model_speed.py``;
no PyAV; OpenCV for DIS models and the sample frames, else ``--frames random`` and a model
without DIS; safetensors for packaged weights).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

import torch

from emavfi.interpolator import Interpolator
from emavfi.models.registry import create_model, get_spec


def _parse_size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def frames(size: tuple[int, int], kind: str, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 3, H, W) RGB pair: the packaged sample resized, or uniform noise."""
    width, height = size
    if kind == "random":
        return tuple(torch.rand(1, 3, height, width, device=device) for _ in range(2))
    from emavfi.runtime.backends import sample_pair

    img0, img1 = sample_pair(height, width)
    return img0.to(device), img1.to(device)


def build_model(name: str, overrides: dict, weights: str | None, device):
    """A module for ``name`` (a checkpoint file, packaged weights, else random weights) or an
    engine's name."""
    if weights or Path(name).is_file():
        from emavfi.models.checkpoints import load_model

        return load_model(weights or name).to(device).eval()
    spec = get_spec(name)
    if not spec.learned:
        return name
    if spec.weights and not overrides:
        from emavfi.models.checkpoints import load_model

        return load_model(name).to(device).eval()
    return create_model(name, **overrides).to(device).eval()


def time_rows(rows: dict, pair, repeats: int, device) -> dict[str, list[float]]:
    """Seconds of each row's call, ``repeats`` times, rows in turn (after one warm-up each)."""
    for interp in rows.values():
        interp(*pair, [0.5])
    seconds = {label: [] for label in rows}
    for _ in range(repeats):
        for label, interp in rows.items():
            _sync(device)
            start = time.perf_counter()
            interp(*pair, [0.5])
            _sync(device)
            seconds[label].append(time.perf_counter() - start)
    return seconds


def time_training_step(model, batch_frames, repeats: int, precision) -> float:
    img0, img1 = batch_frames
    device = img0.device
    model.train()
    timestep = torch.rand(img0.shape[0], device=device)
    for index in range(repeats + 1):
        if index == 1:
            _sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, precision, enabled=bool(precision)):
            out = model(img0, img1, timestep, return_aux=True)
            loss = (out.pred - img0).abs().mean() + sum(m.mean() for m in out.merged_stages)
        loss.backward()
        model.zero_grad(set_to_none=True)
    _sync(device)
    return (time.perf_counter() - start) / repeats


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", nargs="+", default=["ema-cpu"], help="names (engines too)")
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")
    parser.add_argument("--flow-scale", type=float, nargs="+", default=[1.0])
    parser.add_argument(
        "--backend",
        nargs="+",
        default=["auto"],
        choices=["auto", "torch", "onnxruntime", "openvino"],
    )
    parser.add_argument(
        "--precision", nargs="+", default=["auto"], choices=["auto", "fp32", "fp16", "bf16"]
    )
    parser.add_argument("--frames", choices=["sample", "random"], default="sample")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1, help="with --train")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--train", action="store_true", help="time a training step instead")
    parser.add_argument(
        "--arch",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="architecture override, e.g. flow_init=none (YAML value)",
    )
    parser.add_argument("--weights", help="time this checkpoint instead (its architecture)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    overrides = {}
    if args.arch:
        import yaml  # only here: a bare PyTorch install has no PyYAML

        overrides = {k: yaml.safe_load(v) for k, _, v in (a.partition("=") for a in args.arch)}
    size = _parse_size(args.size)
    if args.train:
        model = build_model(args.model[0], overrides, args.weights, device)
        multiple = model.spec.pad_multiple
        width, height = (-(-side // multiple) * multiple for side in size)
        batch = tuple(torch.rand(args.batch, 3, height, width, device=device) for _ in range(2))
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.precision[0])
        seconds = time_training_step(model, batch, args.repeats, dtype)
        print(
            f"{model.spec.name} {width}x{height} on {device} {dtype or torch.float32}: "
            f"{seconds:.3f} s per training step (batch {args.batch})"
        )
        if device.type == "cuda":
            print(f"peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
        return
    rows = {}
    for name in args.model:
        model = build_model(name, overrides, args.weights, device)
        label = f"{name}:{args.weights}" if args.weights else name
        if overrides:
            label += "".join(f"[{a}]" for a in args.arch)
        scales = [(s, False) for s in args.flow_scale] + [
            (s, True) for s in args.flow_scale if s < 1
        ]
        combos = itertools.product(scales, args.backend, args.precision)
        if isinstance(model, str):  # an engine: one row
            combos = [((1.0, False), "torch", "fp32")]
        for (scale, fast), backend, precision in combos:
            if backend == "onnxruntime" and precision not in ("auto", "fp32"):
                continue  # ONNX Runtime's CPU path is float32 only
            interp = Interpolator(
                model,
                device=device,
                scale=scale,
                refine_at_scale=fast,
                precision=precision,
                backend=backend,
                batch_size=1,
            )
            what = f"scale {scale:g}{' --fast' if fast else ''}" if scale != 1 else "full size"
            rows[f"{label} | {what} | {backend} | {precision}"] = interp
    pair = frames(size, args.frames, device)
    seconds = time_rows(rows, pair, args.repeats, device)
    print(
        f"\n{size[0]}x{size[1]}, {args.threads} threads, {device}, {args.repeats} timed calls "
        f"per row in turns, {args.frames} frames; seconds per frame (model only)\n"
    )
    print("| model | flow | backend (ran) | precision (ran) | median s | min - max |")
    print("| --- | --- | --- | --- | ---: | ---: |")
    for label, values in seconds.items():
        name, what, backend, precision = label.split(" | ")
        interp = rows[label]
        ran = interp.last_backend
        used = interp.last_precision
        precision = used if precision == used else f"{precision} ({used})"
        backend = backend if backend == ran else f"{backend} ({ran})"
        print(
            f"| {name} | {what} | {backend} | {precision} | {statistics.median(values):.2f} "
            f"| {min(values):.2f} - {max(values):.2f} |"
        )


if __name__ == "__main__":
    main()
