"""Interpolator: what a model argument resolves to, on which device and in which precision.

No GPU is needed: CUDA and MPS availability are monkeypatched, and a module that records its
``.to()`` calls stands in where a real one would have to move to a GPU.
"""

import logging
import types

import pytest
import torch
from torch import nn

from emavfi import interpolator
from emavfi.engines.blend import BlendEngine
from emavfi.engines.classical import ClassicalEngine
from emavfi.errors import EmavfiError
from emavfi.interpolator import Interpolator, load_any_model, resolve_device
from emavfi.models.checkpoints import load_model, save_checkpoint
from emavfi.models.registry import DEFAULT_MODEL, ModelSpec, create_model, get_spec

CPU = torch.device("cpu")


def _machine(monkeypatch, *, cuda: bool, mps: bool) -> None:
    """Pretend the machine has (or lacks) one CUDA GPU and Apple's MPS."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: int(cuda))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


class _Blend(nn.Module):
    """A fake network: the linear blend, records the batch of each call."""

    def __init__(self, name: str = "fake", **spec_fields):
        super().__init__()
        self.spec = ModelSpec(name=name, builder=nn.Identity, **spec_fields)
        self.batches = []

    def forward(self, img0, img1, timestep):
        self.batches.append(img0.shape[0])
        t = timestep.view(-1, 1, 1, 1)
        return img0 * (1 - t) + img1 * t


class _Mover(_Blend):
    """Records ``.to()`` instead of moving: what a GPU machine would be asked to do."""

    def __init__(self, **spec_fields):
        super().__init__(**spec_fields)
        self.moves = []

    def to(self, *args, **kwargs):
        self.moves.append((args, kwargs))
        return self


# -- resolve_device --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    _machine(monkeypatch, cuda=cuda, mps=mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device() == torch.device(expected)  # auto is the default


def test_auto_without_an_mps_backend_is_the_cpu(monkeypatch):
    _machine(monkeypatch, cuda=False, mps=True)
    with monkeypatch.context() as patch:
        patch.setattr(torch, "backends", types.SimpleNamespace())  # a torch built without it
        assert resolve_device("auto") == CPU
        with pytest.raises(EmavfiError, match="device 'mps' is not available on this machine"):
            resolve_device("mps")


def test_named_devices_need_their_hardware(monkeypatch):
    _machine(monkeypatch, cuda=False, mps=False)
    assert resolve_device("cpu") == CPU and resolve_device(CPU) == CPU
    for name in ("cuda", "cuda:1"):
        message = rf"device '{name}' is not available \(no CUDA GPU found\); use --device cpu"
        with pytest.raises(EmavfiError, match=message):
            resolve_device(name)
    with pytest.raises(
        EmavfiError, match=r"^device 'mps' is not available on this machine; use --device cpu$"
    ):
        resolve_device("mps")
    _machine(monkeypatch, cuda=False, mps=True)
    assert resolve_device("mps") == torch.device("mps")


# -- load_any_model --------------------------------------------------------------------------


def test_none_is_the_default_model_with_its_packaged_weights():
    model = load_any_model(None, CPU)
    packaged = load_model(DEFAULT_MODEL)
    assert model.spec.name == DEFAULT_MODEL and not model.training
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in packaged.state_dict().items())


@pytest.mark.parametrize("name, engine", [("blend", BlendEngine), ("classical", ClassicalEngine)])
def test_engine_names_build_the_engine(name, engine):
    model = load_any_model(name, CPU)
    assert type(model) is engine and model.spec.name == name and not model.training
    assert Interpolator(name, device="cpu").name == name


def test_a_learned_name_without_packaged_weights_is_refused_not_left_random():
    with pytest.raises(EmavfiError, match="model 'ema-tiny' has no packaged weights"):
        load_any_model("ema-tiny", CPU)


def test_checkpoint_path_loads_on_the_device_asked_for(tmp_path):
    torch.manual_seed(0)
    saved = create_model("ema-tiny")
    path = save_checkpoint(saved, tmp_path / "tiny.safetensors")
    for model_argument in (path, str(path)):
        interp = Interpolator(model_argument, device="cpu")
        assert interp.name == str(path) and interp.spec.name == "ema-tiny"
        assert not interp.model.training
        state = interp.model.state_dict()
        assert all(torch.equal(state[k], v) for k, v in saved.state_dict().items())
    # the device is where the module ends up ("meta": a device other than the CPU, on any machine)
    moved = load_any_model(path, torch.device("meta"))
    assert {p.device.type for p in moved.parameters()} == {"meta"}


def test_a_missing_checkpoint_is_not_taken_for_a_model_name(tmp_path):
    with pytest.raises(EmavfiError, match="checkpoint not found: .*missing.safetensors"):
        Interpolator(str(tmp_path / "missing.safetensors"), device="cpu")


def test_unknown_names_get_a_close_match_and_folders_are_no_checkpoint(tmp_path):
    with pytest.raises(EmavfiError, match=r"unknown model 'ema-cpuu' \(did you mean 'ema-cpu'"):
        Interpolator("ema-cpuu", device="cpu")
    with pytest.raises(EmavfiError, match=r"unknown model 'weights/ema-cpu'"):
        Interpolator("weights/ema-cpu", device="cpu")  # neither a file nor a name
    with pytest.raises(EmavfiError, match="unsupported checkpoint type"):
        Interpolator(str(tmp_path), device="cpu")  # exists, but a folder


def test_a_module_without_a_spec_is_fed_like_the_blend_engine():
    class Plain(nn.Module):
        def forward(self, img0, img1, timestep):
            return (img0 + img1) / 2

    interp = Interpolator(Plain(), device="cpu")
    assert interp.spec is get_spec("blend") and interp.name == "blend"
    a, b = torch.rand(1, 3, 5, 7), torch.rand(1, 3, 5, 7)  # no padding: multiple 1
    assert torch.allclose(interp(a, b, [0.5])[0], (a + b) / 2)


def test_a_module_is_named_by_its_spec_in_errors():
    interp = Interpolator(_Blend("middle-only", arbitrary_t=False), device="cpu")
    assert interp.name == "middle-only"
    with pytest.raises(EmavfiError, match=r"model middle-only only synthesises the middle frame"):
        interp(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), [0.25])


# -- device, precision, layout ---------------------------------------------------------------


def test_on_cuda_a_network_runs_fp16_channels_last(monkeypatch):
    _machine(monkeypatch, cuda=True, mps=False)
    net = _Mover(learned=True)
    interp = Interpolator(net, device="cuda")
    assert interp.device == torch.device("cuda") and interp.precision == "fp16"
    assert net.moves == [
        ((torch.device("cuda"),), {}),
        ((), {"memory_format": torch.channels_last}),
    ]
    assert not net.training


def test_on_cuda_an_engine_stays_fp32_in_its_layout(monkeypatch):
    _machine(monkeypatch, cuda=True, mps=False)
    engine = _Mover(learned=False)
    interp = Interpolator(engine, device="cuda")
    assert interp.precision == "fp32" and engine.moves == [((torch.device("cuda"),), {})]


@pytest.mark.parametrize("native_bf16, expected", [(False, "fp32"), (True, "bf16")])
def test_on_the_cpu_auto_precision_follows_native_bf16_and_explicit_ones_are_kept(
    monkeypatch, native_bf16, expected
):
    _machine(monkeypatch, cuda=False, mps=False)
    monkeypatch.setattr(interpolator, "cpu_has_bf16", lambda: native_bf16)
    net = _Mover(learned=True)
    interp = Interpolator(net)  # device auto: the CPU here
    assert interp.device == CPU and interp.precision == expected
    assert net.moves == [((CPU,), {})]
    assert Interpolator(_Blend(), device="cpu", precision="bf16").precision == "bf16"


def test_options_outside_their_range_are_refused():
    with pytest.raises(EmavfiError, match=r"scale must be in \(0, 1\], got 1.5"):
        Interpolator("blend", device="cpu", scale=1.5)
    with pytest.raises(
        EmavfiError, match=r"precision must be auto, fp32, fp16 or bf16, not 'fp64'"
    ):
        Interpolator("blend", device="cpu", precision="fp64")
    with pytest.raises(EmavfiError) as info:
        Interpolator("blend", device="cpu", backend="tensorrt")
    assert str(info.value) == (
        "backend must be one of auto, torch, onnxruntime, openvino, not 'tensorrt'"
    )


@pytest.mark.parametrize(
    "caps, legacy, expected",
    [
        ({"avx512_bf16": True, "amx_bf16": False}, False, True),  # e.g. Zen 4, Cooper Lake
        ({"avx512_bf16": False, "amx_bf16": True}, False, True),
        ({"avx512_bf16": False, "amx_bf16": False, "avx512": True}, True, False),
        ({}, True, False),
        (None, True, True),  # torch < 2.10: no get_capabilities, the older private query
        (None, False, False),
        (None, None, False),  # neither: emulated bf16 is slow, so not native
    ],
)
def test_native_bf16_is_read_from_the_cpu_capabilities(monkeypatch, caps, legacy, expected):
    if caps is None:
        monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    else:
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps, raising=False)
    if legacy is None:
        monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    else:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: legacy, raising=False)
    assert interpolator.cpu_has_bf16() is expected


@pytest.mark.parametrize(
    "requested, native_bf16, graph_bf16, precision, graph_precision",
    [
        ("auto", True, True, "bf16", "bf16"),  # a model measured to keep its quality in bf16
        ("auto", True, False, "bf16", "fp32"),  # PyTorch's bf16 autocast keeps grids fp32
        ("auto", False, True, "fp32", "fp32"),
        ("bf16", False, False, "bf16", "bf16"),  # asked for: every backend gets it
        ("fp16", True, True, "fp16", "fp16"),
        ("fp32", True, True, "fp32", "fp32"),
    ],
)
def test_graph_backends_get_bf16_under_auto_only_where_the_model_keeps_its_quality(
    monkeypatch, requested, native_bf16, graph_bf16, precision, graph_precision
):
    monkeypatch.setattr(interpolator, "cpu_has_bf16", lambda: native_bf16)
    interp = Interpolator(_Blend(graph_bf16=graph_bf16), device="cpu", precision=requested)
    assert (interp.precision, interp.graph_precision) == (precision, graph_precision)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_graph_backend_asked_of_an_engine_is_logged_and_pytorch_runs(
    monkeypatch, caplog, backend
):
    from emavfi.runtime import backends

    monkeypatch.setattr(backends, "open_runner", lambda *a, **k: pytest.fail("graph opened"))
    with caplog.at_level(logging.INFO, logger="emavfi.interpolator"):
        interp = Interpolator("blend", device="cpu", backend=backend)
    assert caplog.messages == [f"blend is an engine (NumPy/OpenCV): --backend {backend} ignored"]
    assert interp.backend == "torch"
    assert interp.last_backend is None and interp.last_precision is None  # nothing ran yet
    a, b = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    assert torch.allclose(interp(a, b, [0.5])[0], (a + b) / 2, atol=1e-6)
    assert (interp.last_backend, interp.last_precision) == ("torch", "fp32")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="emavfi.interpolator"):
        assert Interpolator("blend", device="cpu", backend="torch").backend == "torch"
    assert caplog.messages == []


# -- batching, scale options -----------------------------------------------------------------


@pytest.mark.parametrize(
    "options, batches", [({}, [4, 1]), ({"batch_size": 1}, [1] * 5), ({"batch_size": 0}, [1] * 5)]
)
def test_pairs_go_through_in_batches_of_batch_size(options, batches):
    net = _Blend()
    a, b = torch.zeros(5, 3, 2, 2), torch.ones(5, 3, 2, 2)
    (out,) = Interpolator(net, device="cpu", **options)(a, b, [0.25])
    assert net.batches == batches and torch.allclose(out, torch.full_like(out, 0.25))


class _Coder(_Blend):
    """Encodes once per batch and says which scale options it was given."""

    def encode(self, img0, img1, flow_scale=1.0, refine_at_scale=False):
        self.options = (flow_scale, refine_at_scale)
        return img0, img1

    def decode(self, img0, img1, timestep, features):
        return super().forward(*features, timestep)

    def forward(self, img0, img1, timestep, flow_scale=1.0, refine_at_scale=False):
        raise AssertionError("a model that encodes and decodes is not called directly")


@pytest.mark.parametrize("refine_at_scale", [False, True])
def test_refine_at_scale_is_passed_only_when_asked(refine_at_scale):
    net = _Coder()
    options = {"refine_at_scale": True} if refine_at_scale else {}
    interp = Interpolator(net, device="cpu", scale=0.5, **options)
    a, b = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    assert torch.allclose(interp(a, b, [0.25])[0], 0.75 * a + 0.25 * b)
    assert net.options == (0.5, refine_at_scale) and interp.refine_at_scale is refine_at_scale


def test_a_model_with_encode_but_no_decode_is_called_directly():
    class EncodeOnly(_Blend):
        def encode(self, *args, **kwargs):
            raise AssertionError("encode without decode is not the two-step contract")

    net = EncodeOnly()
    a, b = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    assert torch.allclose(Interpolator(net, device="cpu")(a, b, [0.5])[0], (a + b) / 2)
    assert net.batches == [1]


def test_scale_on_a_model_without_flow_scale_is_logged_as_ignored(caplog):
    ignored = "model fake estimates no flow at reduced scale; --scale ignored"
    with caplog.at_level(logging.INFO, logger="emavfi.interpolator"):
        Interpolator(_Blend(), device="cpu", scale=0.5)
    assert caplog.messages == [ignored]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="emavfi.interpolator"):
        Interpolator(_Blend(), device="cpu", scale=1.0)
        Interpolator(_Coder(), device="cpu", scale=0.5)
    assert ignored not in caplog.messages and "fake estimates" not in caplog.text


class _FlowScaled(_Blend):
    """Estimates flow at a scale but refines nothing (as RIFE): no ``refine_at_scale``."""

    def forward(self, img0, img1, timestep, flow_scale=1.0):
        self.flow_scale = flow_scale
        return super().forward(img0, img1, timestep)


def test_fast_on_a_model_without_refinement_only_sets_the_scale(caplog):
    note = "model fake refines nothing at full size: --fast only sets the scale"
    with caplog.at_level(logging.INFO, logger="emavfi.interpolator"):
        interp = Interpolator(_FlowScaled(), device="cpu", scale=0.5, refine_at_scale=True)
    assert caplog.messages == [note]
    assert interp.scale == 0.5 and interp.refine_at_scale is True  # as the eval report records
    a, b = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    assert torch.allclose(interp(a, b, [0.5])[0], (a + b) / 2)
    assert interp.model.flow_scale == 0.5
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="emavfi.interpolator"):
        Interpolator(_FlowScaled(), device="cpu", scale=0.5)  # --fast not asked for
        Interpolator(_Blend(), device="cpu", refine_at_scale=True)  # no flow scale at all
    assert "refines nothing" not in caplog.text


def test_scale_without_fast_refines_ema_vfi_at_full_size():
    """``--scale 0.5`` alone estimates motion at half size and refines at full size (the
    published ``hr_inference``); only ``--fast`` (refine_at_scale) moves the U-Net too."""
    torch.manual_seed(0)
    model = create_model("ema-tiny").eval()
    refined = []
    model.unet.register_forward_pre_hook(lambda _, args: refined.append(args[0].shape[2:]))
    a, b = torch.rand(1, 3, 128, 192), torch.rand(1, 3, 128, 192)
    Interpolator(model, device="cpu", scale=0.5, precision="fp32")(a, b, [0.5])
    Interpolator(model, device="cpu", scale=0.5, refine_at_scale=True, precision="fp32")(
        a, b, [0.5]
    )
    assert refined == [(128, 192), (64, 96)]
