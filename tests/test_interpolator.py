"""Interpolator: padding, timesteps, batching, channel order, dtype and bad input."""

import numpy as np
import pytest
import torch
from torch import nn

from emavfi.errors import EmavfiError
from emavfi.interpolator import Interpolator
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
        return img0 * (1 - timestep.view(-1, 1, 1, 1)) + img1 * timestep.view(-1, 1, 1, 1)


def test_pads_to_multiple_and_unpads():
    net = _Recorder(32, "RGB")
    interp = Interpolator(net, device="cpu", batch_size=8)
    out = interp(torch.rand(1, 3, 37, 50), torch.rand(1, 3, 37, 50), [0.5])
    assert out[0].shape == (1, 3, 37, 50)
    assert net.calls[0][0] == (1, 3, 64, 64)


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


def test_tta_averages_flipped_predictions():
    interp = Interpolator("blend", device="cpu", tta=True)
    a, b = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6)
    assert torch.allclose(interp(a, b, [0.4])[0], 0.6 * a + 0.4 * b, atol=1e-6)


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
