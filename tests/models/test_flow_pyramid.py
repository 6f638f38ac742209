"""The flow pyramid on fields that vary, and odd sizes: a 2x2 average of the vectors, halved."""

import torch
import torch.nn.functional as F

from emavfi.models.ema_vfi.warp import downscale_flow, flow_pyramid


def _expected_half(flow: torch.Tensor) -> torch.Tensor:
    """Bilinear at scale 1/2 (pixel centres, no corner alignment) samples midway between each
    2x2 block of pixels: their mean; an odd last row or column is dropped. Vectors halve."""
    height, width = flow.shape[-2] // 2 * 2, flow.shape[-1] // 2 * 2
    return F.avg_pool2d(flow[..., :height, :width], 2) * 0.5


def test_downscaling_averages_each_2x2_block_on_odd_sizes():
    torch.manual_seed(0)
    flow = torch.randn(2, 4, 7, 9) * 5
    half = downscale_flow(flow)
    assert half.shape == (2, 4, 3, 4)
    assert torch.allclose(half, _expected_half(flow), atol=1e-5)


def test_each_pyramid_level_halves_the_one_above():
    torch.manual_seed(1)
    flow = torch.randn(1, 4, 12, 20)
    pyramid = flow_pyramid(flow, 3)
    assert pyramid[0] is flow
    assert torch.allclose(pyramid[1], _expected_half(flow), atol=1e-5)
    assert torch.allclose(pyramid[2], _expected_half(pyramid[1]), atol=1e-5)
    assert len(flow_pyramid(flow, 1)) == 1
