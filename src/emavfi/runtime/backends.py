"""Running a model's exported graph in ONNX Runtime or OpenVINO, and choosing a backend.

``--backend torch`` runs the PyTorch module. ``onnxruntime`` and ``openvino`` run the graph of
``emavfi.runtime.export``, exported once per weights (and flow scale, opset, emavfi and torch
versions) into the user cache folder (``$EMAVFI_CACHE``, else ``$XDG_CACHE_HOME/emavfi``, else
``~/.cache/emavfi``); its sizes are dynamic, OpenVINO compiles it per input size. Before a graph
is used it is checked against PyTorch on a small real frame pair (float32, max difference 1e-3):
a stale or wrong export is never used silently.

``auto`` (the default) keeps PyTorch unless an ONNX backend is installed, the model runs on the
CPU at full flow scale or without DIS, and the frames are at least ``AUTO_MIN_PIXELS``: then, the
first time a size is seen, each backend present is checked and timed on the frames themselves
and the fastest is used; the choice is cached per model, size, precision and machine.

Precision: in bf16 OpenVINO lowers every operation it chooses, warping and flow sums included,
which PyTorch's autocast path keeps in float32 (measured: Practical-RIFE loses 0.17 dB on UCF101
that way, ema-cpu nothing). So a graph runs bf16 under ``--precision auto`` only for models whose
spec says it keeps their quality (``ModelSpec.graph_bf16``), or when bf16 is asked for.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import platform
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emavfi.errors import EmavfiError
from emavfi.runtime.export import DEFAULT_OPSET, FLOW_INIT, INPUT, export_onnx, uses_dis
from emavfi.tempfiles import atomic_write_text

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
GRAPH_BACKENDS = ("onnxruntime", "openvino")
# Below this many pixels a one-time export and timing cannot pay for itself: auto keeps torch.
AUTO_MIN_PIXELS = 512 * 512
EXACT_TOLERANCE = 1e-3  # max |graph - PyTorch| on the check pair, both float32
FP16_TOLERANCE = 2e-2  # the same for an --fp16 export (against PyTorch in float32)
_SESSIONS_PER_GRAPH = 4  # OpenVINO compiles per input shape; keep the last few
_EXTRAS = {"onnxruntime": "onnx", "openvino": "openvino"}  # pip install 'emavfi[EXTRA]'


def cache_dir() -> Path:
    """The user cache folder for exported graphs and backend choices."""
    if os.environ.get("EMAVFI_CACHE"):
        return Path(os.environ["EMAVFI_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emavfi"


def installed(backend: str) -> bool:
    """Whether the package that ``backend`` needs can be imported."""
    return backend == "torch" or importlib.util.find_spec(backend) is not None


def require(backend: str) -> None:
    """EmavfiError naming the extra to install unless ``backend``'s package is there."""
    if not installed(backend):
        raise EmavfiError(
            f"backend {backend} needs the {backend} package: pip install 'emavfi[{_EXTRAS[backend]}]'"
        )


def weights_key(model: nn.Module) -> str:
    """16 hex digits of SHA-256 over the model's spec name, architecture and weights."""
    spec = model.spec
    digest = hashlib.sha256(f"{spec.name}|{json.dumps(spec.arch, sort_keys=True)}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def graph_file(model: nn.Module, flow_scale: float, refine_at_scale: bool, opset: int) -> Path:
    """Where the exported graph of these weights and options lives in the cache."""
    from emavfi import __version__

    fast = "-fast" if refine_at_scale else ""
    versions = f"emavfi{__version__}-torch{torch.__version__.split('+')[0]}"
    name = f"{model.spec.name}-{weights_key(model)}-s{flow_scale:g}{fast}-opset{opset}-{versions}"
    return cache_dir() / "graphs" / f"{name}.onnx"


def cached_graph(model: nn.Module, flow_scale: float = 1.0, refine_at_scale: bool = False) -> Path:
    """The model's graph in the cache, exported (atomically) the first time."""
    path = graph_file(model, flow_scale, refine_at_scale, DEFAULT_OPSET)
    if not path.is_file():
        log.info("exporting %s to ONNX once (cached in %s)", model.spec.name, path.parent)
        export_onnx(model, path, flow_scale=flow_scale, refine_at_scale=refine_at_scale)
    return path


class Session:
    """A graph compiled by one backend: ``session(feeds) -> output`` with NumPy arrays."""

    def __init__(self, backend: str, path: Path, precision: str = "fp32", threads: int = 0):
        require(backend)
        self.backend, self.precision = backend, precision
        threads = threads or torch.get_num_threads()
        if backend == "onnxruntime":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            self._ort = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
            half = self._ort.get_inputs()[0].type == "tensor(float16)"
        else:
            import openvino

            self._core = openvino.Core()
            self._model = self._core.read_model(str(path))
            hint = {"bf16": "bf16", "fp16": "f16"}.get(precision, "f32")
            self._config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": hint}
            self._compiled: OrderedDict[tuple, object] = OrderedDict()
            half = self._model.inputs[0].get_element_type() == openvino.Type.f16
        self.input_dtype = np.float16 if half else np.float32  # an --fp16 export takes float16

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {name: array.astype(self.input_dtype, copy=False) for name, array in feeds.items()}
        if self.backend == "onnxruntime":
            return self._ort.run(None, feeds)[0]
        shapes = tuple((name, array.shape) for name, array in sorted(feeds.items()))
        if shapes not in self._compiled:
            model = self._model.clone()
            model.reshape({name: list(shape) for name, shape in shapes})
            self._compiled[shapes] = self._core.compile_model(model, "CPU", self._config)
            while len(self._compiled) > _SESSIONS_PER_GRAPH:
                self._compiled.popitem(last=False)
        return self._compiled[shapes](feeds)[0]


class GraphRunner:
    """Runs an exported graph where the Interpolator would run the module.

    ``runner(img0, img1, times)``: (B, 3, H, W) float32 on the CPU in the model's channel
    order, H and W padded -> one (B, 3, H, W) tensor per timestep. A DIS model's warm start is
    computed here (once per pair) and fed as ``flow_init``. Items go through the graph one at a
    time: OpenVINO compiles once per frame size whatever the batch, and on a CPU a batch would
    not run faster.
    """

    def __init__(self, session: Session, dis: bool):
        self.session, self.dis = session, dis
        self.name = session.backend

    def __call__(
        self, img0: torch.Tensor, img1: torch.Tensor, times: list[float]
    ) -> list[torch.Tensor]:
        from emavfi.flow import dis

        pairs = dis.batch_pair_flows(img0, img1) if self.dis else None
        height, width = img0.shape[2:]
        plane = torch.empty(1, 1, height, width)
        preds = []
        for t in times:
            items = []
            for index in range(img0.shape[0]):
                one = slice(index, index + 1)
                frames = (img0[one].float(), img1[one].float(), plane.fill_(t))
                feeds = {INPUT: torch.cat(frames, 1).numpy()}
                if pairs is not None:
                    flow, logit = dis.initial_flow(pairs[one], [t], img0[one].float())
                    feeds[FLOW_INIT] = torch.cat((flow, logit), 1).numpy()
                items.append(torch.from_numpy(np.asarray(self.session(feeds), dtype=np.float32)))
            preds.append(torch.cat(items))
        return preds


def sample_pair(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The packaged sample pair (RGB, 320 x 180) resized to ``height`` x ``width``."""
    from importlib import resources

    from emavfi.imageio import frames_to_tensor, read_image

    assets = resources.files("emavfi") / "assets"
    frames = []
    for name in ("frame0.png", "frame1.png"):
        with resources.as_file(assets / name) as path:
            image = frames_to_tensor(read_image(path))[None]
        frames.append(
            torch.nn.functional.interpolate(
                image, size=(height, width), mode="bilinear", align_corners=False
            )
        )
    return frames[0], frames[1]


def check_graph(
    runner: GraphRunner, reference: Callable, multiple: int, path: Path, channel_order: str
) -> float:
    """The max difference of ``runner`` from PyTorch (``reference``, float32) on the check pair.

    EmavfiError above ``EXACT_TOLERANCE`` (``FP16_TOLERANCE`` for a float16 graph).
    """
    img0, img1 = sample_pair(2 * multiple, 3 * multiple)  # a small real input
    if channel_order == "BGR":
        img0, img1 = img0.flip(1), img1.flip(1)
    with torch.inference_mode():
        expected = reference(img0, img1, [0.5])[0].float()
    got = runner(img0, img1, [0.5])[0]
    error = float((got - expected).abs().max())
    tolerance = FP16_TOLERANCE if runner.session.input_dtype == np.float16 else EXACT_TOLERANCE
    if not error <= tolerance:
        raise EmavfiError(
            f"the exported graph {path.name} differs from PyTorch by {error:.2g} "
            f"(max, tolerance {tolerance:g}); delete it from {path.parent} to export again"
        )
    log.debug("%s matches PyTorch on the check pair (max difference %.2g)", runner.name, error)
    return error


def open_runner(
    backend: str,
    model: nn.Module,
    reference: Callable,
    *,
    precision: str,
    flow_scale: float,
    refine_at_scale: bool,
) -> GraphRunner:
    """A checked runner of ``model``'s cached graph in ``backend`` (``onnxruntime``/``openvino``).

    ``reference(img0, img1, times)`` is the PyTorch path in float32 (for the check).
    """
    require(backend)
    path = cached_graph(model, flow_scale, refine_at_scale)
    dis = uses_dis(model)
    multiple = model.spec.pad_multiple_at(flow_scale)
    check = Session(backend, path, "fp32")
    check_graph(GraphRunner(check, dis), reference, multiple, path, model.spec.channel_order)
    if precision == "fp32" or backend == "onnxruntime":
        return GraphRunner(check, dis)
    return GraphRunner(Session(backend, path, precision), dis)


def eligible(model: nn.Module, device: torch.device, flow_scale: float, refine: bool) -> str:
    """Why ``model`` cannot run on a graph backend here, or "" if it can."""
    spec = getattr(model, "spec", None)
    if spec is None or not spec.learned:
        return "engines run in NumPy/OpenCV"
    if device.type != "cpu":
        return f"graph backends run on the CPU, not {device.type}"
    if uses_dis(model) and (flow_scale != 1 or refine):
        return "a DIS-initialised model's graph takes full-size flow (use --scale 1)"
    return ""


def choice_file() -> Path:
    return cache_dir() / "backend_choices.json"


def _machine() -> str:
    caps = getattr(torch.cpu, "get_capabilities", dict)()
    return f"{platform.machine()}/{caps.get('cpu_name', platform.processor())}"


def choose(
    candidates: dict[str, Callable],
    key: dict,
    img0: torch.Tensor,
    img1: torch.Tensor,
    times: list[float],
) -> str:
    """The fastest of ``candidates`` (name -> ``run(img0, img1, times)``) on these frames.

    One warm-up and one timed call each; the winner is cached under ``key`` (with versions and
    the machine), so later runs of the same size skip the timing.
    """
    key = {**key, "machine": _machine(), "threads": torch.get_num_threads()}
    for name in candidates:
        if name != "torch":
            key[name] = importlib.import_module(name).__version__
    text = json.dumps(key, sort_keys=True)
    path = choice_file()
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if known.get(text) in candidates:
        return known[text]
    seconds = {}
    for name, run in candidates.items():
        run(img0, img1, times)
        start = time.perf_counter()
        run(img0, img1, times)
        seconds[name] = time.perf_counter() - start
    best = min(seconds, key=seconds.get)
    log.info(
        "backend auto at %dx%d: %s (%s)",
        img0.shape[3],
        img0.shape[2],
        best,
        ", ".join(f"{name} {value:.2f} s" for name, value in seconds.items()),
    )
    known[text] = best
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(known, indent=1))
    except (OSError, EmavfiError) as exc:  # a read-only cache only costs the timing next time
        log.debug("cannot cache the backend choice: %s", exc)
    return best
