"""Seconds per interpolated frame of a registered network (random weights: speed only).

    python benchmarks/model_speed.py --model ema-cpu --size 1280x720 --flow-scale 1.0 0.5
    python benchmarks/model_speed.py --model ema-cpu --device cuda --train --batch 32 --size 256x256

Inference runs under ``torch.inference_mode`` on a padded frame (multiple of the spec's
``pad_multiple``); every flow scale below 1 is timed twice in the same run: as published
(refinement at full size) and with ``refine_at_scale`` (``--fast`` on the command line: the
whole network at that scale, only the final warp and blend at full size). ``--train`` times one
forward + backward step of a batch instead.
"""

from __future__ import annotations

import argparse
import time

import torch
import yaml

from emavfi.interpolator import Interpolator
from emavfi.models.registry import create_model


def _parse_size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_inference(
    model, size, flow_scale: float, repeats: int, precision: str, device, fast=False
) -> float:
    """Seconds per frame through the Interpolator (its padding included) at WIDTHxHEIGHT."""
    width, height = size
    interp = Interpolator(
        model,
        device=device,
        scale=flow_scale,
        refine_at_scale=fast,
        precision=precision,
        batch_size=1,
    )
    img0, img1 = (torch.rand(1, 3, height, width, device=device) for _ in range(2))
    interp(img0, img1, [0.5])  # warm-up
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        interp(img0, img1, [0.5])
    _sync(device)
    return (time.perf_counter() - start) / repeats


def time_training_step(model, frames, repeats: int, precision) -> float:
    img0, img1 = frames
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ema-cpu")
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")
    parser.add_argument("--flow-scale", type=float, nargs="+", default=[1.0, 0.5])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default="fp32")
    parser.add_argument("--train", action="store_true", help="time a training step instead")
    parser.add_argument("--deform-fusion", action="store_true", help="turn the fusion stage on")
    parser.add_argument(
        "--arch",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="architecture override, e.g. flow_init=none (YAML value)",
    )
    parser.add_argument("--weights", help="time this checkpoint instead (its architecture)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    precision = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[args.precision]
    overrides = {"deform_fusion": True} if args.deform_fusion else {}
    for item in args.arch:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    if args.weights:
        from emavfi.models.checkpoints import load_model

        model = load_model(args.weights).to(device).eval()
        args.model = f"{model.spec.name}:{args.weights}"
    else:
        model = create_model(args.model, **overrides).to(device).eval()
    multiple = model.spec.pad_multiple
    width, height = (-(-side // multiple) * multiple for side in _parse_size(args.size))
    frames = tuple(torch.rand(args.batch, 3, height, width, device=device) for _ in range(2))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    name = (
        args.model
        + ("+deform" if args.deform_fusion else "")
        + "".join(f"[{a}]" for a in args.arch)
    )
    header = f"{name} ({params:.2f}M params) {width}x{height} on {device} {args.precision}"
    if args.train:
        seconds = time_training_step(model, frames, args.repeats, precision)
        print(f"{header}: {seconds:.3f} s per training step (batch {args.batch})")
        if device.type == "cuda":
            print(f"peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
        return
    size = _parse_size(args.size)
    header = f"{name} ({params:.2f}M params) {size[0]}x{size[1]} on {device} {args.precision}"
    for flow_scale in args.flow_scale:
        seconds = time_inference(model, size, flow_scale, args.repeats, args.precision, device)
        print(f"{header} flow_scale {flow_scale}: {seconds:.2f} s per frame")
        if flow_scale < 1:
            seconds = time_inference(
                model, size, flow_scale, args.repeats, args.precision, device, True
            )
            print(
                f"{header} flow_scale {flow_scale} refine_at_scale (--fast): {seconds:.2f} s per frame"
            )


if __name__ == "__main__":
    main()
