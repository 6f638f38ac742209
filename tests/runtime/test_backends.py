"""Graph backends behind the Interpolator: parity with PyTorch, the cache, auto's choice, errors."""

import json

import numpy as np
import pytest
import torch

from emavfi.cli.main import main
from emavfi.errors import EmavfiError
from emavfi.interpolator import Interpolator, default_precision
from emavfi.models.registry import create_model
from emavfi.runtime import backends


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("EMAVFI_CACHE", str(folder))
    return folder


def _dis_model():
    """ema-tiny started from DIS: the runner must compute DIS and feed it as flow_init."""
    torch.manual_seed(0)
    return create_model("ema-tiny", flow_init="dis").eval()


def _pair(height=64, width=96):
    return backends.sample_pair(height, width)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_graph_backend_matches_pytorch_through_the_interpolator(backend):
    model = _dis_model()
    first, second = _pair(70, 100)  # padded to 96 x 128 and cropped back
    img0, img1 = torch.cat((first, second)), torch.cat((second, first))  # a batch of two pairs
    expected = Interpolator(model, device="cpu", precision="fp32", backend="torch")(
        img0, img1, [0.25, 0.5]
    )
    interp = Interpolator(model, device="cpu", precision="fp32", backend=backend)
    got = interp(img0, img1, [0.25, 0.5])
    assert interp.last_backend == backend
    for g, e in zip(got, expected):
        assert g.shape == (2, 3, 70, 100)
        assert float((g - e).abs().max()) < 1e-3
    assert float((got[0] - got[1]).abs().max()) > 1e-2  # two timesteps, two frames


def test_the_export_is_cached_per_weights(cache, monkeypatch):
    calls = []
    real_export = backends.export_onnx
    monkeypatch.setattr(
        backends, "export_onnx", lambda *a, **k: calls.append(1) or real_export(*a, **k)
    )
    model = _dis_model()
    Interpolator(model, device="cpu", precision="fp32", backend="onnxruntime")
    Interpolator(model, device="cpu", precision="fp32", backend="onnxruntime")
    assert len(calls) == 1 and len(list((cache / "graphs").glob("*.onnx"))) == 1
    with torch.no_grad():
        model.unet.conv.bias.add_(0.1)  # other weights, another graph
    Interpolator(model, device="cpu", precision="fp32", backend="onnxruntime")
    assert len(calls) == 2


def test_a_wrong_graph_in_the_cache_is_refused(cache):
    model = _dis_model()
    Interpolator(model, device="cpu", precision="fp32", backend="onnxruntime")
    (graph,) = (cache / "graphs").glob("*.onnx")
    torch.manual_seed(1)
    other = create_model("ema-tiny", flow_init="dis").eval()  # same architecture, other weights
    backends.export_onnx(other, graph)
    with pytest.raises(EmavfiError, match="differs from PyTorch"):
        Interpolator(model, device="cpu", precision="fp32", backend="onnxruntime")


def test_auto_times_the_backends_once_and_caches_the_choice(cache, monkeypatch):
    monkeypatch.setattr(backends, "AUTO_MIN_PIXELS", 0)
    model = _dis_model()
    img0, img1 = _pair()
    torch_out = Interpolator(model, device="cpu", precision="fp32", backend="torch")(
        img0, img1, [0.5]
    )
    interp = Interpolator(model, device="cpu", precision="fp32")
    got = interp(img0, img1, [0.5])
    assert interp.last_backend in ("torch", "onnxruntime", "openvino")
    assert float((got[0] - torch_out[0]).abs().max()) < 1e-3
    choices = json.loads((cache / "backend_choices.json").read_text())
    (key,) = choices
    assert choices[key] == interp.last_backend and json.loads(key)["size"] == [64, 96]
    # a cached choice is followed without timing again
    choices[key] = "onnxruntime"
    (cache / "backend_choices.json").write_text(json.dumps(choices))
    monkeypatch.setattr(backends.time, "perf_counter", lambda: pytest.fail("timed again"))
    again = Interpolator(model, device="cpu", precision="fp32")
    again(img0, img1, [0.5])
    assert again.last_backend == "onnxruntime"


def test_auto_keeps_torch_for_small_frames_and_engines(cache):
    interp = Interpolator(_dis_model(), device="cpu")
    interp(*_pair(), [0.5])
    engine = Interpolator("classical", device="cpu")
    engine(*_pair(), [0.5])
    assert interp.last_backend == engine.last_backend == "torch"
    assert not cache.exists()  # nothing exported


def test_missing_package_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(backends, "installed", lambda name: name != "openvino")
    with pytest.raises(EmavfiError, match=r"pip install 'emavfi\[openvino\]'"):
        Interpolator(_dis_model(), device="cpu", backend="openvino")
    image = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    import cv2

    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), image)
    argv = ["pair", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "o")]
    assert main([*argv, "--model", "ema-cpu", "--backend", "openvino"]) == 2
    err = capsys.readouterr().err.strip()
    assert "emavfi[openvino]" in err and len(err.splitlines()) == 1


def test_a_backend_that_cannot_run_the_model_is_refused():
    with pytest.raises(EmavfiError, match="full-size flow"):
        Interpolator(_dis_model(), device="cpu", backend="onnxruntime", scale=0.5)


def test_engines_ignore_the_backend(cache):
    engine = Interpolator("classical", device="cpu", backend="openvino")
    engine(*_pair(), [0.5])
    assert engine.last_backend == "torch" and not cache.exists()


@pytest.mark.parametrize(
    "capabilities, device, expected",
    [
        ({"avx512_bf16": True}, "cpu", "bf16"),
        ({"amx_bf16": True}, "cpu", "bf16"),
        ({"avx512_f": True}, "cpu", "fp32"),
        ({}, "cuda", "fp16"),
    ],
)
def test_auto_precision_follows_the_hardware(monkeypatch, capabilities, device, expected):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    assert default_precision(torch.device(device)) == expected


@pytest.mark.parametrize("model, expected", [("ema-cpu", "bf16"), ("rife", "fp32")])
def test_graphs_get_bf16_under_auto_only_where_it_was_measured_to_hold(
    monkeypatch, model, expected
):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True})
    if model == "rife":
        model = create_model("rife-4.25", widths=[8, 8, 8, 8, 8])
    interp = Interpolator(model, device="cpu", backend="torch")
    assert interp.precision == "bf16" and interp.graph_precision == expected
    explicit = Interpolator(model, device="cpu", backend="torch", precision="bf16")
    assert explicit.graph_precision == "bf16"
