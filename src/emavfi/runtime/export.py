"""ONNX export of any learned model in the convention of the video-interpolation ecosystem.

The graph takes one input ``input`` of shape (N, 7, H, W), float in [0, 1]: img0 (channels 0-2),
img1 (3-5) and the timestep plane (6, the same t in (0, 1) at every pixel), and returns
``output`` (N, 3, H, W) in [0, 1]. Colours are in the model's own order (``channel_order`` in the
file's metadata: BGR for the published EMA-VFI and Practical-RIFE weights, RGB for ema-cpu). N, H
and W are dynamic; H and W must be multiples of ``pad_multiple`` (metadata): the caller pads, as
vs-mlrt does for its RIFE models.

A model whose first flow estimate is OpenCV's DIS (``flow_init="dis"``, ema-cpu) takes a second
input ``flow_init`` (N, 5, H, W): the classical engine's flow at t (4 channels, pixels) and its
mask logit (1), from ``emavfi.flow.dis.batch_pair_flows`` / ``initial_flow``. DIS is no ONNX
operator, so it runs outside the graph; ``emavfi.runtime.backends`` feeds it.

The TorchScript-based exporter (``dynamo=False``) is used: it exports EMA-VFI with dynamic sizes
in seconds, while ``torch.export``'s symbolic reasoning about the attention windows' padding (sizes
modulo 7) ran for over 15 minutes without finishing (torch 2.14).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from emavfi.errors import EmavfiError
from emavfi.models.registry import ModelSpec
from emavfi.tempfiles import atomic_path

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17  # LayerNormalization (17) and GridSample (16) are single operators
MIN_OPSET = 16  # GridSample
INPUT, FLOW_INIT, OUTPUT = "input", "flow_init", "output"


def uses_dis(model: nn.Module) -> bool:
    """Whether ``model`` starts from DIS flow, which the graph takes as the input ``flow_init``."""
    return getattr(model, "flow_init", "none") == "dis"


def _encodes(model: nn.Module) -> bool:
    """Whether ``model`` splits into ``encode`` (per pair) and ``decode`` (per timestep)."""
    return callable(getattr(model, "decode", None)) and callable(getattr(model, "encode", None))


class ExportGraph(nn.Module):
    """One network call in the ONNX convention (see the module docstring).

    ``forward(frames, flow_init=None)``: frames (N, 7, H, W); flow_init (N, 5, H, W) for a DIS
    model -> (N, 3, H, W). ``flow_scale`` and ``refine_at_scale`` are fixed in the graph.
    """

    def __init__(self, model: nn.Module, flow_scale: float = 1.0, refine_at_scale: bool = False):
        super().__init__()
        self.model = model
        self.options: dict = {}
        if flow_scale != 1.0 or refine_at_scale:
            if uses_dis(model):
                raise EmavfiError(
                    "a DIS-initialised model exports at --scale 1 only (its flow_init input is "
                    "full size)"
                )
            self.options["flow_scale"] = flow_scale
            if refine_at_scale and _encodes(model):
                self.options["refine_at_scale"] = True

    def forward(self, frames: torch.Tensor, flow_init: torch.Tensor | None = None) -> torch.Tensor:
        img0, img1 = frames[:, 0:3], frames[:, 3:6]
        timestep = frames[:, 6:7, :1, :1]  # the plane holds one value per item
        if not _encodes(self.model):
            return self.model(img0, img1, timestep, **self.options)
        features = self.model.encode(img0, img1, **self.options)
        initial = None if flow_init is None else (flow_init[:, :4], flow_init[:, 4:5])
        return self.model.decode(img0, img1, timestep, features, initial=initial)


def example_inputs(model: nn.Module, multiple: int) -> tuple[torch.Tensor, ...]:
    """Inputs of the size the graph is traced at: 2 x (2 x 3) multiples, a different t each."""
    height, width = 2 * multiple, 3 * multiple
    frames = torch.rand(2, 7, height, width)
    frames[:, 6] = torch.tensor([0.5, 0.25])[:, None, None]
    if not uses_dis(model):
        return (frames,)
    return frames, torch.randn(2, 5, height, width)


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    flow_scale: float = 1.0,
    refine_at_scale: bool = False,
) -> Path:
    """Write ``model`` (with ``model.spec``) as an ONNX file at ``path``; returns the path.

    ``fp16`` exports the network in float16 (weights, input, output); the warping grids and the
    flow sums stay float32 inside the graph (``backward_warp``, the models' flow sums), since
    pixel coordinates above 2048 lose sub-pixel precision in float16. The TorchScript exporter
    mixes float16 and float32 in EMA-VFI's attention blocks: such a graph is refused here.
    """
    try:
        import onnx
    except ModuleNotFoundError:
        raise EmavfiError(
            "ONNX export needs the onnx package: pip install 'emavfi[onnx]'"
        ) from None
    if opset < MIN_OPSET:
        raise EmavfiError(f"--opset must be {MIN_OPSET} or more (GridSample), got {opset}")
    spec: ModelSpec | None = getattr(model, "spec", None)
    if spec is None or not spec.learned:
        raise EmavfiError("only learned models export to ONNX (blend and classical have no graph)")
    dtype = torch.float16 if fp16 else torch.float32
    if dtype != next(model.parameters()).dtype or next(model.parameters()).device.type != "cpu":
        model = copy.deepcopy(model)  # leave the caller's module as it was
    graph = ExportGraph(model, flow_scale, refine_at_scale).to("cpu", dtype).eval()
    multiple = spec.pad_multiple_at(flow_scale)
    inputs = tuple(x.to(dtype) for x in example_inputs(model, multiple))
    names = [INPUT, FLOW_INIT][: len(inputs)]
    dynamic = {name: {0: "batch", 2: "height", 3: "width"} for name in [*names, OUTPUT]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".onnx") as partial:  # no half-written graph, ever
        # The tracer warns about every Python-level branch on a size; those are fixed by
        # design (flow scale, timestep shape), so the warnings say nothing to the user.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                inputs,
                str(partial),
                dynamo=False,
                opset_version=opset,
                input_names=names,
                output_names=[OUTPUT],
                dynamic_axes=dynamic,
                do_constant_folding=not fp16,  # folding turns float16 weights into float32
            )
        proto = onnx.load(str(partial))
        if fp16:
            _check_types(proto, spec.name)
        metadata = {
            "emavfi_model": spec.name,
            "channel_order": spec.channel_order,
            "pad_multiple": str(multiple),
            "flow_scale": f"{flow_scale:g}",
            "inputs": "input: N x 7 x H x W = img0, img1, timestep plane in [0, 1]"
            + (
                "; flow_init: N x 5 x H x W = DIS flow at t (px) and mask logit"
                if names[1:]
                else ""
            ),
            "precision": "fp16" if fp16 else "fp32",
        }
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(partial))
    log.debug("exported %s to %s (opset %d, %s)", spec.name, path, opset, metadata["precision"])
    return path


def _check_types(proto, name: str) -> None:
    """EmavfiError if ONNX's strict type inference rejects ``proto``."""
    import onnx

    try:
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except onnx.shape_inference.InferenceError as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise EmavfiError(
            f"{name} does not export to a valid float16 graph ({first}); export float32 and "
            "let the runtime reduce precision (TensorRT or vs-mlrt with fp16=True)"
        ) from None
