"""``emavfi export MODEL -o model.onnx``: a learned model as ONNX, for ONNX Runtime or vs-mlrt.

The graph's convention (one N x 7 x H x W input, dynamic sizes) is described in
``emavfi.runtime.export`` and in the README; the file's metadata repeats it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emavfi.cli.options import add_scale_arguments, scale_options
from emavfi.errors import EmavfiError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from emavfi.runtime.export import DEFAULT_OPSET

    parser.add_argument(
        "model", help="registry name with weights (ema-cpu) or checkpoint (.safetensors, .pkl)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument(
        "--fp16",
        action="store_true",
        help="float16 weights, input and output (for GPU runtimes); warping grids stay float32",
    )
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})"
    )
    add_scale_arguments(parser)  # fixed in the graph; a DIS model (ema-cpu) exports at 1 only


def export_model(args: argparse.Namespace) -> tuple[Path, str]:
    """Export ``args.model`` to ``args.output``; returns the path and a one-line check result."""
    from emavfi.interpolator import Interpolator
    from emavfi.runtime import backends
    from emavfi.runtime.export import export_onnx, uses_dis

    if args.output.suffix.lower() != ".onnx":
        raise EmavfiError(f"the output must end in .onnx, got {args.output}")
    if args.output.is_dir():
        raise EmavfiError(f"output {args.output} is a folder; give a file name ending in .onnx")
    scale = scale_options(args)
    interp = Interpolator(args.model, device="cpu", precision="fp32", backend="torch", **scale)
    path = export_onnx(
        interp.model,
        args.output,
        opset=args.opset,
        fp16=args.fp16,
        flow_scale=scale["scale"],
        refine_at_scale=scale["refine_at_scale"],
    )
    if not backends.installed("onnxruntime"):
        return path, "not checked: install onnxruntime to compare it with PyTorch"
    runner = backends.GraphRunner(backends.Session("onnxruntime", path), uses_dis(interp.model))
    error = backends.check_graph(
        runner,
        lambda a, b, times: interp.run_torch(a, b, times, "fp32"),
        interp.pad_multiple,
        path,
        interp.spec.channel_order,
    )
    return path, f"matches PyTorch in onnxruntime (max difference {error:.1g})"


def run(args: argparse.Namespace) -> int:
    path, check = export_model(args)
    print(f"wrote {path}: {check}")
    return 0
