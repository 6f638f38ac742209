"""Interpolator: padding, timesteps, batching, channel order, dtype and bad input."""

import logging
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from emavfi.errors import EmavfiError
from emavfi.imageio import tensor_to_frames
from emavfi.interpolator import Interpolator, resolve_device
from emavfi.models.registry import ModelSpec


class _Recorder(nn.Module):
    """A fake network that records what it receives and returns its first input's channels."""

    def __init__(self, pad_multiple: int, order: str):
        super().__init__()
        self.spec = ModelSpec(
            name="fake", builder=nn.Identity, pad_multiple=pad_multiple, channel_order=order
        )
        self.calls = []

    def forward(self, img0, img1, timestep):
        self.calls.append((tuple(img0.shape), timestep.clone()))
        self.inputs = (img0.clone(), img1.clone())
        return img0 * (1 - timestep.view(-1, 1, 1, 1)) + img1 * timestep.view(-1, 1, 1, 1)


def test_pads_to_multiple_and_unpads():
    net = _Recorder(32, "RGB")
    interp = Interpolator(net, device="cpu", batch_size=8)
    a, b = torch.rand(1, 3, 37, 50), torch.rand(1, 3, 37, 50)
    out = interp(a, b, [0.5])
    assert out[0].shape == (1, 3, 37, 50)
    assert net.calls[0][0] == (1, 3, 64, 64)
    # the frame sits top-left and comes back from there
    assert torch.allclose(out[0], (a + b) / 2, atol=1e-6)


def test_padding_replicates_the_edges():
    net = _Recorder(16, "RGB")
    a, b = torch.rand(2, 3, 21, 27), torch.rand(2, 3, 21, 27)
    Interpolator(net, device="cpu")(a, b, [0.5])
    for padded, frame in zip(net.inputs, (a, b)):
        assert padded.shape == (2, 3, 32, 32)
        assert torch.equal(padded[..., :21, :27], frame)
        assert torch.equal(padded[..., 21:, :27], frame[..., 20:, :].expand(-1, -1, 11, -1))
        assert torch.equal(padded[..., :21, 27:], frame[..., :, 26:].expand(-1, -1, -1, 5))
        corner = frame[..., 20:, 26:].expand(-1, -1, 11, 5)
        assert torch.equal(padded[..., 21:, 27:], corner)


def test_all_timesteps_of_a_batch_in_chunks():
    net = _Recorder(1, "RGB")
    interp = Interpolator(net, device="cpu", batch_size=4)
    img0, img1 = torch.zeros(3, 3, 8, 8), torch.ones(3, 3, 8, 8)
    outs = interp(img0, img1, [0.25, 0.5, 0.75])
    assert [o.shape for o in outs] == [(3, 3, 8, 8)] * 3
    for t, out in zip([0.25, 0.5, 0.75], outs):
        assert torch.allclose(out, torch.full_like(out, t))
    assert sum(c[0][0] for c in net.calls) == 9 and max(c[0][0] for c in net.calls) <= 4
    assert all(c[1].numel() == c[0][0] for c in net.calls)


def test_bgr_models_get_bgr_and_return_rgb():
    class Swap(_Recorder):
        def forward(self, img0, img1, timestep):
            self.seen = img0.clone()
            return img0

    net = Swap(1, "BGR")
    img = torch.zeros(1, 3, 4, 4)
    img[:, 0] = 1.0  # pure red in RGB
    out = Interpolator(net, device="cpu")(img, img, [0.5])[0]
    assert net.seen[0, 2].min() == 1.0 and net.seen[0, 0].max() == 0.0
    assert torch.equal(out, img)


def test_uint8_frames_round_trip():
    interp = Interpolator("blend", device="cpu")
    a = np.zeros((5, 7, 3), np.uint8)
    b = np.full((5, 7, 3), 200, np.uint8)
    (mid,) = interp.frames(a, b, [0.5])
    assert mid.dtype == np.uint8 and mid.shape == (5, 7, 3) and (mid == 100).all()
    gray = np.zeros((5, 7), np.uint8)
    assert interp.frames(gray, gray, [0.5])[0].shape == (5, 7, 3)


@pytest.mark.parametrize("t", [0.0, 1.0, -0.1, 1.5])
def test_timestep_outside_open_interval(t):
    with pytest.raises(EmavfiError, match="outside"):
        Interpolator("blend", device="cpu")(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), [t])


def test_size_mismatch_and_bad_options():
    interp = Interpolator("blend", device="cpu")
    with pytest.raises(EmavfiError, match="differ"):
        interp(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 6), [0.5])
    with pytest.raises(EmavfiError, match="scale"):
        Interpolator("blend", device="cpu", scale=0)
    with pytest.raises(EmavfiError, match="unknown model"):
        Interpolator("no-such-model-xyz", device="cpu")


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_missing_cuda_is_a_clear_error():
    with pytest.raises(EmavfiError, match="not available"):
        Interpolator("blend", device="cuda")


def test_device_names_are_checked_before_use(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # pretend: one GPU
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(EmavfiError, match=r"'cuda:1' is not available \(1 CUDA GPU"):
        resolve_device("cuda:1")
    with pytest.raises(EmavfiError, match="unknown device 'gpu'"):
        resolve_device("gpu")


def test_tta_averages_flipped_predictions():
    interp = Interpolator("blend", device="cpu", tta=True)
    a, b = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6)
    assert torch.allclose(interp(a, b, [0.4])[0], 0.6 * a + 0.4 * b, atol=1e-6)


class _Shifter(_Recorder):
    """Not flip-invariant: img1 moved 1 px down and 2 px right, blended with img0."""

    def forward(self, img0, img1, timestep):
        t = timestep.view(-1, 1, 1, 1)
        return img0 * (1 - t) + torch.roll(img1, shifts=(1, 2), dims=(2, 3)) * t


def test_tta_averages_the_predictions_on_flipped_frames():
    a, b = torch.rand(1, 3, 6, 8), torch.rand(1, 3, 6, 8)
    net = _Shifter(1, "RGB")

    def shifted(x0, x1):
        return 0.6 * x0 + 0.4 * torch.roll(x1, shifts=(1, 2), dims=(2, 3))

    plain = shifted(a, b)
    flipped_w = shifted(a.flip(3), b.flip(3)).flip(3)  # flip, predict, flip back
    flipped_h = shifted(a.flip(2), b.flip(2)).flip(2)
    expected = (plain + flipped_w + flipped_h) / 3
    assert torch.allclose(Interpolator(net, device="cpu")(a, b, [0.4])[0], plain, atol=1e-6)
    with_tta = Interpolator(net, device="cpu", tta=True)(a, b, [0.4])[0]
    assert torch.allclose(with_tta, expected, atol=1e-6)
    assert (with_tta - plain).abs().max() > 0.05


def test_network_encodes_once_for_all_timesteps():
    from emavfi.models.registry import create_model

    net = create_model("ema-tiny")
    calls = []
    original = net.encode
    net.encode = lambda *a, **k: calls.append(1) or original(*a, **k)
    interp = Interpolator(net, device="cpu")
    outs = interp(torch.rand(1, 3, 40, 52), torch.rand(1, 3, 40, 52), [0.25, 0.5, 0.75])
    assert len(calls) == 1 and [o.shape for o in outs] == [(1, 3, 40, 52)] * 3
    assert not torch.allclose(outs[0], outs[2])  # the timestep reaches the network


def test_frames_takes_rgba_grey_and_float_arrays():
    interp = Interpolator("blend", device="cpu")
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 100, 7  # alpha is dropped, not averaged in
    grey = np.full((5, 7), 200, np.uint8)
    (mid,) = interp.frames(rgba, grey, [0.5])
    assert mid.shape == (5, 7, 3) and (mid == 150).all()
    floats = np.full((5, 7, 3), 0.2), np.full((5, 7, 3), 0.6)  # float arrays are in [0, 1]
    assert (interp.frames(*floats, [0.5])[0] == 102).all()


@pytest.mark.parametrize("shape", [(5, 7, 2), (5, 7, 5), (1, 5, 7, 3)])
def test_frames_rejects_other_shapes(shape):
    frame = np.zeros(shape, np.uint8)
    with pytest.raises(EmavfiError, match=rf"expected an HxWx3 image, got shape \({shape[0]}, "):
        Interpolator("blend", device="cpu").frames(frame, frame, [0.5])


def test_tensor_to_frames_clamps_and_rounds():
    image = torch.tensor([-0.5, 0.2, 0.5, 1.0, 1.7]).view(1, 1, 5).expand(3, 1, 5)
    array = tensor_to_frames(image)
    assert array.dtype == np.uint8 and array.shape == (1, 5, 3)
    assert array[0, :, 0].tolist() == [0, 51, 128, 255, 255]


class _ScaledRecorder(_Recorder):
    """A fake network that takes ``flow_scale`` like EMA-VFI, and records autocast state."""

    def forward(self, img0, img1, timestep, flow_scale=1.0):
        self.flow_scale = flow_scale
        self.autocast = (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
        return super().forward(img0, img1, timestep)


@pytest.mark.parametrize(
    "size, scale, takes_scale, padded",
    [
        ((40, 52), 1.0, True, (48, 64)),  # the model's multiple, 16
        ((40, 52), 0.5, True, (64, 64)),  # 16 / 0.5: the half-size frame meets 16 too
        ((40, 52), 0.5, False, (48, 64)),  # a model without flow_scale ignores --scale
        ((48, 50), 1.0, True, (48, 64)),  # only the width needs padding
        ((30, 64), 1.0, True, (32, 64)),  # only the height
    ],
)
def test_padding_follows_the_flow_scale(size, scale, takes_scale, padded):
    net = _ScaledRecorder(16, "RGB") if takes_scale else _Recorder(16, "RGB")
    a, b = torch.rand(1, 3, *size), torch.rand(1, 3, *size)
    out = Interpolator(net, device="cpu", scale=scale)(a, b, [0.5])[0]
    assert net.calls[0][0] == (1, 3, *padded)
    assert torch.allclose(out, (a + b) / 2, atol=1e-6)
    if takes_scale:
        assert net.flow_scale == scale


@pytest.mark.parametrize(
    "precision, expected",
    [("fp32", (False, None)), ("bf16", (True, torch.bfloat16)), ("fp16", (True, torch.float16))],
)
def test_precision_sets_autocast(precision, expected):
    net = _ScaledRecorder(1, "RGB")
    interp = Interpolator(net, device="cpu", precision=precision)
    interp(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), [0.5])
    enabled, dtype = net.autocast
    assert enabled == expected[0] and (dtype == expected[1] or not enabled)
    assert (interp.last_backend, interp.last_precision) == ("torch", precision)


def test_bgr_models_get_both_frames_in_bgr():
    class Both(_Recorder):
        def forward(self, img0, img1, timestep):
            self.seen = (img0.clone(), img1.clone())
            return img1

    net = Both(1, "BGR")
    red, blue = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    red[:, 0], blue[:, 2] = 1.0, 1.0
    out = Interpolator(net, device="cpu")(red, blue, [0.5])[0]
    assert torch.equal(net.seen[0], blue) and torch.equal(net.seen[1], red)  # channels reversed
    assert torch.equal(out, blue)  # and back to RGB


def test_channels_last_reaches_the_network():
    """What the Interpolator does on CUDA (tensor cores), checked on the CPU."""

    class Layout(_Recorder):
        def forward(self, img0, img1, timestep):
            self.layouts = [
                x.is_contiguous(memory_format=torch.channels_last) for x in (img0, img1)
            ]
            return super().forward(img0, img1, timestep)

    net = Layout(1, "RGB")
    interp = Interpolator(net, device="cpu")
    a = torch.rand(1, 3, 4, 6)
    interp(a, a, [0.5])
    assert net.layouts == [False, False]
    interp._channels_last = True
    assert torch.allclose(interp(a, a, [0.5])[0], a)
    assert net.layouts == [True, True]


def test_encode_receives_the_scale_options():
    class Coder(_Recorder):
        def encode(self, img0, img1, flow_scale=1.0, refine_at_scale=False):
            self.options = (flow_scale, refine_at_scale)
            return img0, img1

        def decode(self, img0, img1, timestep, features):
            return super().forward(*features, timestep)

        def forward(self, img0, img1, timestep, flow_scale=1.0, refine_at_scale=False):
            raise AssertionError("forward is not called when the model encodes and decodes")

    net = Coder(1, "RGB")
    a, b = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    out = Interpolator(net, device="cpu", scale=0.5, refine_at_scale=True)(a, b, [0.25])[0]
    assert net.options == (0.5, True) and torch.allclose(out, 0.75 * a + 0.25 * b)


def test_only_the_last_timestep_of_a_pair_is_decoded_as_last():
    class Coder(_Recorder):
        def encode(self, img0, img1):
            return img0, img1

        def decode(self, img0, img1, timestep, features, last=False):
            self.lasts.append(last)
            return super().forward(*features, timestep)

    net = Coder(1, "RGB")
    net.lasts = []
    a, b = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    Interpolator(net, device="cpu", batch_size=1)(a, b, [0.25, 0.5, 0.75])
    assert net.lasts == [False, False, True] * 2  # per chunk of one pair


def test_uint8_tensors_are_scaled_and_single_frames_batched():
    net = _Recorder(1, "RGB")
    a = torch.full((3, 2, 2), 51, dtype=torch.uint8)  # 0.2
    out = Interpolator(net, device="cpu")(a, a, [0.5])[0]
    assert out.shape == (1, 3, 2, 2) and torch.allclose(out, torch.full_like(out, 0.2))
    with pytest.raises(EmavfiError, match=r"shape \(B, 3, H, W\), got \(1, 4, 2, 2\)"):
        Interpolator(net, device="cpu")(torch.rand(1, 4, 2, 2), torch.rand(1, 4, 2, 2), [0.5])


def test_predictions_are_clamped_to_the_unit_range():
    class Overshoot(_Recorder):
        def forward(self, img0, img1, timestep):
            return img0 * 3 - 1  # -1 .. 2

    a = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    out = Interpolator(Overshoot(1, "RGB"), device="cpu")(a, a, [0.5])[0]
    assert out[0, 0, 0].tolist() == [0.0, 0.5, 1.0]


def test_a_graph_backend_is_checked_and_opened_once_with_the_options(monkeypatch):
    """``--backend onnxruntime``: eligibility asked with the device and scale options, the
    runner opened at construction (fail before any work) with them and a float32 PyTorch
    reference to be checked against, then reused by every call."""
    from emavfi.runtime import backends

    asked, opened = [], []

    class Runner:
        session = SimpleNamespace(precision="bf16")

        def __init__(self, reference):
            self.reference = reference

        def __call__(self, img0, img1, times):
            return [1 - p for p in self.reference(img0, img1, times)]  # not PyTorch's output

    def open_runner(backend, model, reference, *, precision, flow_scale, refine_at_scale):
        opened.append((backend, model, precision, flow_scale, refine_at_scale))
        return Runner(reference)

    monkeypatch.setattr(backends, "eligible", lambda *args: asked.append(args) or "")
    monkeypatch.setattr(backends, "open_runner", open_runner)
    net = _ScaledRecorder(1, "RGB")
    interp = Interpolator(
        net, device="cpu", backend="onnxruntime", precision="bf16", scale=0.5, refine_at_scale=True
    )
    assert asked == [(net, torch.device("cpu"), 0.5, True)]
    assert opened == [("onnxruntime", net, "bf16", 0.5, True)]
    a, b = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    for _ in range(2):
        (out,) = interp(a, b, [0.25])
        assert torch.allclose(out, 1 - (0.75 * a + 0.25 * b))
    assert (interp.last_backend, interp.last_precision) == ("onnxruntime", "bf16")
    assert len(opened) == 1 and len(asked) == 1
    reference = interp._graph_runners["onnxruntime"].reference
    (direct,) = reference(a, b, [0.25])
    assert torch.allclose(direct, 0.75 * a + 0.25 * b) and net.autocast[0] is False  # float32


def test_a_graph_backend_that_cannot_run_the_model_says_why(monkeypatch):
    from emavfi.runtime import backends

    monkeypatch.setattr(backends, "eligible", lambda *args: "no graph for this one")
    monkeypatch.setattr(backends, "open_runner", lambda *a, **k: pytest.fail("opened"))
    with pytest.raises(EmavfiError) as info:
        Interpolator(_Recorder(1, "RGB"), device="cpu", backend="openvino")
    assert str(info.value) == "backend openvino cannot run fake: no graph for this one"


def _auto_backends(monkeypatch, *, eligible="", open_runner=None):
    """backend="auto" with OpenVINO "installed" as a fake runner; returns the calls made."""
    from emavfi.runtime import backends

    calls = SimpleNamespace(eligible=[], weights=[], timed=[])

    class Runner:
        session = SimpleNamespace(precision="fp32")

        def __call__(self, img0, img1, times):
            return [torch.full_like(img0, t) for t in times]

    def choose(candidates, description, img0, img1, times):
        outputs = {name: candidate(img0, img1, times) for name, candidate in candidates.items()}
        calls.timed.append(
            SimpleNamespace(outputs=outputs, description=description, args=(img0, img1, times))
        )
        return "openvino"

    monkeypatch.setattr(backends, "installed", lambda name: name == "openvino")
    monkeypatch.setattr(backends, "eligible", lambda *a: calls.eligible.append(a) or eligible)
    monkeypatch.setattr(backends, "open_runner", open_runner or (lambda *a, **k: Runner()))
    monkeypatch.setattr(backends, "weights_key", lambda model: calls.weights.append(model) or "w")
    monkeypatch.setattr(backends, "choose", choose)
    return calls


def test_auto_times_the_graph_backends_once_per_size_on_large_frames(monkeypatch):
    """``backend="auto"``: frames of at least ``AUTO_MIN_PIXELS`` run on the fastest of PyTorch
    and the installed graph backends, timed once per padded size and number of timesteps;
    smaller frames, and frames a model would refine in tiles, stay on PyTorch untimed."""
    from emavfi.runtime import backends

    calls = _auto_backends(monkeypatch)
    net = _Recorder(1, "RGB")
    interp = Interpolator(net, device="cpu", precision="fp32")
    small = torch.rand(1, 3, 8, 8)
    interp(small, small, [0.5])
    assert interp.last_backend == "torch" and calls.timed == []
    side = math.isqrt(backends.AUTO_MIN_PIXELS)
    a, b = torch.rand(1, 3, side, side), torch.rand(1, 3, side, side)
    for _ in range(2):
        (out,) = interp(a, b, [0.25])
        assert interp.last_backend == "openvino" and torch.equal(out, torch.full_like(a, 0.25))
    (timed,) = calls.timed  # once for both calls
    assert sorted(timed.outputs) == ["openvino", "torch"] and timed.args[2] == [0.25]
    assert torch.equal(timed.args[0], a) and torch.equal(timed.args[1], b)
    assert timed.description == {
        "model": "fake",
        "weights": "w",
        "size": [side, side],
        "timesteps": 1,
        "precision": ["fp32", "fp32"],
        "scale": 1.0,
        "refine_at_scale": False,
    }
    net.refine_tile_pixels = side * side - 1  # PyTorch would tile: its memory stays bounded
    interp = Interpolator(net, device="cpu", precision="fp32")
    interp(a, b, [0.25])
    assert interp.last_backend == "torch" and len(calls.timed) == 1


def test_auto_times_each_padded_size_and_counts_pixels_not_the_square_of_the_width(monkeypatch):
    from emavfi.runtime import backends

    calls = _auto_backends(monkeypatch)
    net = _ScaledRecorder(1, "RGB")
    interp = Interpolator(net, device="cpu", precision="bf16", scale=0.5, refine_at_scale=True)
    side = math.isqrt(backends.AUTO_MIN_PIXELS)
    wide = torch.rand(1, 3, 8, side)  # wide and short: few pixels, PyTorch untimed
    interp(wide, wide, [0.5])
    assert interp.last_backend == "torch" and calls.timed == []
    for height in (side, side + 8, side):  # same width, two heights: timed once each
        a, b = torch.rand(1, 3, height, side), torch.rand(1, 3, height, side)
        (out,) = interp(a, b, [0.25])
        assert interp.last_backend == "openvino" and torch.equal(out, torch.full_like(a, 0.25))
    assert [timed.description["size"] for timed in calls.timed] == [[side, side], [side + 8, side]]
    assert calls.eligible and set(calls.eligible) == {(net, torch.device("cpu"), 0.5, True)}
    assert calls.weights == [net, net]
    # the PyTorch candidate timed against the graph is the model at the session's precision
    (torch_out,) = calls.timed[-1].outputs["torch"]
    img0, img1, _ = calls.timed[-1].args
    assert net.autocast == (True, torch.bfloat16) and net.flow_scale == 0.5
    assert torch.allclose(torch_out.float(), torch.lerp(img0, img1, 0.25), atol=1e-2)


def test_auto_keeps_pytorch_where_no_graph_can_run_the_model(monkeypatch, caplog):
    from emavfi.runtime import backends

    calls = _auto_backends(monkeypatch, eligible="refines in tiles")
    side = math.isqrt(backends.AUTO_MIN_PIXELS)
    a = torch.rand(1, 3, side, side)
    interp = Interpolator(_Recorder(1, "RGB"), device="cpu", precision="fp32")
    with caplog.at_level(logging.INFO, logger="emavfi"):
        assert torch.allclose(interp(a, a, [0.5])[0], a, atol=1e-6)
    assert caplog.messages == []  # no graph tried, so no warning about one
    assert interp.last_backend == "torch" and calls.timed == [] and len(calls.eligible) == 1


def test_auto_uses_a_graph_up_to_the_size_pytorch_would_tile(monkeypatch):
    from emavfi.runtime import backends

    calls = _auto_backends(monkeypatch)
    side = math.isqrt(backends.AUTO_MIN_PIXELS)
    net = _Recorder(1, "RGB")
    net.refine_tile_pixels = side * side  # exactly one tile: PyTorch would not tile yet
    a = torch.rand(1, 3, side, side)
    interp = Interpolator(net, device="cpu", precision="fp32")
    interp(a, a, [0.5])
    assert interp.last_backend == "openvino" and len(calls.timed) == 1


def test_auto_skips_a_graph_backend_that_fails_to_open_and_says_why(monkeypatch, caplog):
    from emavfi.runtime import backends

    def broken(*args, **kwargs):
        raise RuntimeError("no such operator: GridSample\n(long trace)")

    calls = _auto_backends(monkeypatch, open_runner=broken)
    side = math.isqrt(backends.AUTO_MIN_PIXELS)
    a = torch.rand(1, 3, side, side)
    interp = Interpolator(_Recorder(1, "RGB"), device="cpu", precision="fp32")
    with caplog.at_level(logging.WARNING, logger="emavfi.interpolator"):
        assert torch.allclose(interp(a, a, [0.5])[0], a, atol=1e-6)
    assert caplog.messages == ["backend openvino not used: no such operator: GridSample"]
    assert interp.last_backend == "torch" and calls.timed == []  # nothing to time it against
