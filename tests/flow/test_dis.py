"""The one DIS module: the consistency check's two settings, flows at t, the torch adapters."""

import math

import numpy as np
import pytest
import torch

from emavfi.flow import dis


def _constant(height: int, width: int, x: float, y: float = 0.0) -> np.ndarray:
    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0], flow[..., 1] = x, y
    return flow


def test_consistency_fixed_tolerance():
    """Round-trip error 0.5 px everywhere: exp(-0.25 / (2 sigma^2)), also at the border."""
    forward, backward = _constant(8, 12, 2.0), _constant(8, 12, -1.5)
    reliable = dis.consistency(forward, backward)
    assert reliable.dtype == np.float32 and reliable.shape == (8, 12)
    assert np.allclose(reliable, math.exp(-0.25 / (2 * dis.SIGMA**2)))
    assert np.allclose(dis.consistency(forward, -forward), 1.0)


def test_consistency_relative_tolerance_and_outside():
    """The teacher's setting: tolerance 1 + 0.05 |f|, zero where x + f(x) leaves the frame."""
    forward, backward = _constant(8, 12, 2.0), _constant(8, 12, -1.5)
    reliable = dis.consistency(forward, backward, sigma=1.0, relative=0.05, zero_outside=True)
    assert np.allclose(reliable[:, :10], math.exp(-0.25 / (2 * 1.1**2)))
    assert np.all(reliable[:, 10:] == 0)  # x + 2 > 11
    larger = dis.consistency(
        _constant(8, 12, 8.0), _constant(8, 12, -7.5), sigma=1.0, relative=0.05
    )
    assert np.allclose(larger, math.exp(-0.25 / (2 * 1.4**2)))  # same error, larger motion


def test_remap_is_a_backward_warp():
    image = np.arange(48, dtype=np.float32).reshape(6, 8)
    warped = dis.remap(image, _constant(6, 8, 1.0, 2.0))
    assert np.array_equal(warped[:4, :7], image[2:, 1:])
    assert np.array_equal(warped[:, 7], warped[:, 6])  # x = 8 is outside: column 7 replicated


@pytest.mark.parametrize("t", [0.25, 0.5, 0.8])
def test_flows_at_follows_linear_motion(t):
    """A 4 px translation, fully consistent: flows -4t and 4(1 - t), img0 weighted 1 - t."""
    f01, f10 = _constant(6, 8, 4.0), _constant(6, 8, -4.0)
    ones = np.ones((6, 8), np.float32)
    flow_t0, flow_t1, weight0 = dis.flows_at(dis.PairFlows(f01, f10, ones, ones), t)
    assert np.allclose(flow_t0[..., 0], -4 * t) and np.allclose(flow_t1[..., 0], 4 * (1 - t))
    assert np.allclose(flow_t0[..., 1], 0) and np.allclose(weight0, 1 - t)


def test_initial_flow_batches_and_uses_each_items_timestep():
    """The warm start's tensors: (B, 4, H, W) flow and a (B, 1, H, W) logit of img0's weight."""
    gen = torch.Generator().manual_seed(0)
    img0 = torch.nn.functional.interpolate(torch.rand(2, 3, 12, 12, generator=gen), size=48)
    img1 = torch.roll(img0, 4, dims=3)
    pairs = dis.batch_pair_flows(img0, img1)
    flow, mask_logit = dis.initial_flow(pairs, [0.25, 0.75], img0)
    assert flow.shape == (2, 4, 48, 48) and mask_logit.shape == (2, 1, 48, 48)
    centre = (slice(None), slice(16, 32), slice(16, 32))
    assert flow[0][centre][0].median() == pytest.approx(-1.0, abs=0.3)
    assert flow[1][centre][0].median() == pytest.approx(-3.0, abs=0.3)
    weight0 = torch.sigmoid(mask_logit)
    assert weight0[0][centre].median() == pytest.approx(0.75, abs=0.05)
    assert weight0[1][centre].median() == pytest.approx(0.25, abs=0.05)
