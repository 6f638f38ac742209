"""The model contract: every registered model and engine honours it; its helpers do what they say."""

import pytest
import torch
from torch import nn

from emavfi.errors import EmavfiError
from emavfi.models import contract as contract_module
from emavfi.models.checkpoints import load_model
from emavfi.models.contract import (
    InterpolationOutput,
    backward_warp,
    conv_in_bands,
    resize_flow,
    timestep_plane,
    timestep_tensor,
    to_channel_order,
)
from emavfi.models.registry import create_model, get_spec, list_models

# Arch overrides that make each family tiny (only those a spec takes are used).
TINY = {"width": 4, "depths": [1, 1, 1, 2, 2], "widths": [8, 8, 8, 8, 8]}


def _tiny(name: str):
    spec_arch = get_spec(name).arch
    return create_model(name, **{k: v for k, v in TINY.items() if k in spec_arch}).eval()


@pytest.mark.parametrize("name", list_models())
def test_every_model_follows_the_contract(name):
    torch.manual_seed(0)
    model = _tiny(name)
    multiple = get_spec(name).pad_multiple
    height, width = 2 * max(multiple, 32), 3 * max(multiple, 32)
    generator = torch.Generator().manual_seed(0)
    img0, img1 = (torch.rand(2, 3, height, width, generator=generator) for _ in range(2))
    with torch.no_grad():
        pred = model(img0, img1, 0.5)
        out = model(img0, img1, torch.tensor([0.3, 0.7]), return_aux=True)
    assert pred.shape == img0.shape and 0 <= pred.min() and pred.max() <= 1
    assert isinstance(out, InterpolationOutput)
    assert out.pred.shape == out.merged.shape == img0.shape
    assert out.merged_stages[-1].shape == img0.shape
    if get_spec(name).learned or out.flow is not None:
        assert out.flow.shape == (2, 4, height, width) and out.mask.shape == (2, 1, height, width)
        assert out.flow_stages[-1] is out.flow
        assert ((out.mask >= 0) & (out.mask <= 1)).all()
    if get_spec(name).learned:
        assert len(out.flow_stages) == len(out.merged_stages) >= 2
        assert torch.allclose(out.merged_stages[-1], out.merged)
        assert ((out.mask > 0) & (out.mask < 1)).all()


@pytest.mark.parametrize(
    "name", [n for n in list_models(learned=True) if get_spec(n).weights is None]
)
def test_models_without_packaged_weights_say_what_to_pass(name):
    with pytest.raises(EmavfiError) as info:
        load_model(name)
    message = str(info.value)
    assert "no packaged weights" in message and "\n" not in message
    published = get_spec(name).published
    assert (published or ".safetensors") in message


def test_output_stages_default_to_the_final_ones():
    pred, flow = torch.rand(1, 3, 4, 4), torch.rand(1, 4, 4, 4)
    out = InterpolationOutput(pred=pred, merged=pred * 0.5, flow=flow)
    assert out.flow_stages == [flow] and len(out.merged_stages) == 1
    assert torch.equal(out.merged_stages[0], pred * 0.5)
    assert InterpolationOutput(pred=pred, merged=pred).flow_stages == []


def test_channel_order_reverses_frames_not_flows():
    rgb = torch.rand(2, 3, 4, 5)
    bgr = to_channel_order(rgb, "BGR")
    assert torch.equal(bgr[:, 0], rgb[:, 2]) and torch.equal(bgr[:, 2], rgb[:, 0])
    assert torch.equal(to_channel_order(bgr, "BGR"), rgb) and to_channel_order(rgb, "RGB") is rgb
    with pytest.raises(ValueError, match="channel_order"):
        to_channel_order(rgb, "bgr")
    flow, mask = torch.rand(2, 4, 4, 5), torch.rand(2, 1, 4, 5)
    stages = [bgr * 0.25, bgr * 0.5]
    out = InterpolationOutput(
        pred=bgr, merged=stages[-1], flow=flow, mask=mask, merged_stages=stages
    )
    back = out.to_channel_order("BGR")
    assert torch.equal(back.pred, rgb) and torch.equal(back.merged, rgb * 0.5)
    assert len(back.merged_stages) == 2
    assert all(torch.equal(x, y) for x, y in zip(back.merged_stages, [rgb * 0.25, rgb * 0.5]))
    assert back.flow is flow and back.mask is mask and back.flow_stages == [flow]
    assert out.to_channel_order("RGB") is out  # already RGB: nothing to convert


def test_timestep_tensor_and_plane():
    like = torch.zeros(3, 2, 5, 7, dtype=torch.float64)
    assert timestep_tensor(0.25, like).shape == (3, 1, 1, 1)
    assert timestep_tensor(0.25, like).dtype == torch.float64
    per_item = timestep_tensor(torch.tensor([0.1, 0.2, 0.3]), like)
    assert per_item.flatten().tolist() == pytest.approx([0.1, 0.2, 0.3])
    plane = timestep_plane(torch.tensor([0.1, 0.2, 0.3]), like)
    assert plane.shape == (3, 1, 5, 7) and plane[2].unique().item() == pytest.approx(0.3)
    with pytest.raises(ValueError, match="3 values for a batch of 2"):
        timestep_tensor(torch.tensor([0.1, 0.2, 0.3]), like[:2])


def test_resize_flow_scales_values_with_the_size():
    flow = torch.ones(1, 4, 8, 16)
    flow[:, 1::2] = 2.0  # y components
    resized = resize_flow(flow, (16, 48))
    assert resized.shape == (1, 4, 16, 48)
    assert torch.allclose(resized[:, 0::2], torch.full_like(resized[:, 0::2], 3.0))
    assert torch.allclose(resized[:, 1::2], torch.full_like(resized[:, 1::2], 4.0))
    assert resize_flow(flow, (8, 16)) is flow


def test_warp_moves_pixels_and_keeps_float32_grid_under_autocast():
    width = 4096  # coordinates this large lose their fractions in 16-bit floats
    source = torch.arange(width, dtype=torch.float32).view(1, 1, 1, width).repeat(1, 1, 2, 1)
    flow = torch.zeros(1, 2, 2, width)
    flow[:, 0] = 0.5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        warped = backward_warp(source, flow)
    assert warped.dtype == torch.float32
    expected = (torch.arange(width) + 0.5).clamp(max=width - 1)
    assert torch.allclose(warped[0, 0, 0], expected, atol=1e-2)


def test_warp_of_a_window_is_that_window_of_the_whole_frames_warp():
    """``origin``: a tile's flow warps from the whole source, as the whole frame's warp does."""
    generator = torch.Generator().manual_seed(0)
    source = torch.rand(2, 3, 12, 20, generator=generator)  # not square: rows and columns differ
    flow = torch.randn(2, 2, 12, 20, generator=generator) * 3
    window = (slice(None), slice(None), slice(4, 10), slice(7, 18))
    part = backward_warp(source, flow[window], origin=(4, 7))
    assert part.shape == (2, 3, 6, 11)
    assert torch.allclose(part, backward_warp(source, flow)[window], atol=1e-6)


def test_convolutions_in_bands_equal_the_whole_map(monkeypatch):
    torch.manual_seed(0)
    layers = nn.Sequential(nn.Conv2d(5, 6, 3, 1, 1), nn.PReLU(6), nn.Conv2d(6, 4, 3, 1, 1))
    parts = [torch.rand(2, 3, 50, 24), torch.rand(2, 2, 50, 24)]
    with torch.no_grad():
        whole = layers(torch.cat(parts, 1))
        monkeypatch.setattr(contract_module, "BAND_ABOVE_PIXELS", 0)
        monkeypatch.setattr(
            contract_module, "BAND_PIXELS", 24 * 7
        )  # bands of 7 rows, the last of 1
        bands = []
        layers.register_forward_hook(lambda module, args, out: bands.append(out.shape[2]))
        banded = conv_in_bands(layers, parts, margin=2)
        assert bands == [9] + [11] * 5 + [10, 3]  # 7 rows and up to 2 more each side
        assert float((banded - whole).abs().max()) < 1e-6
        # Cut without the margin, the rows along each cut differ: the check above can fail.
        assert float((conv_in_bands(layers, parts, margin=0) - whole).abs().max()) > 1e-3


def test_small_maps_and_traced_graphs_go_through_whole(monkeypatch):
    """Bands only above BAND_ABOVE_PIXELS and when a band would not hold every row; a traced
    graph (ONNX export, dynamic sizes) never bakes bands in."""
    layers = nn.Conv2d(5, 4, 3, 1, 1).requires_grad_(False)  # traceable as constants
    parts = [torch.rand(1, 3, 50, 24), torch.rand(1, 2, 50, 24)]
    calls = []
    layers.register_forward_hook(lambda module, args, out: calls.append(out.shape[2]))

    def layer_calls(above: int, band: int) -> int:
        monkeypatch.setattr(contract_module, "BAND_ABOVE_PIXELS", above)
        monkeypatch.setattr(contract_module, "BAND_PIXELS", band)
        calls.clear()
        with torch.no_grad():
            conv_in_bands(layers, parts, margin=1)
        return len(calls)

    assert layer_calls(50 * 24, 24 * 7) == 1  # a map of exactly the limit: whole
    assert layer_calls(50 * 24 - 1, 24 * 7) == 8  # one pixel more: bands of 7 rows
    assert layer_calls(0, 24 * 50) == 1  # a band of 50 rows holds the whole map
    assert layer_calls(0, 24 * 49) == 2
    assert layer_calls(0, 24 * 7) == 8
    calls.clear()
    traced = torch.jit.trace(
        lambda x: conv_in_bands(layers, [x], margin=1), torch.rand(1, 5, 50, 24), check_trace=False
    )
    assert [int(rows) for rows in calls] == [50]  # bands of 7 rows are still set
    assert traced(torch.rand(1, 5, 70, 24)).shape == (1, 4, 70, 24)  # its size stays dynamic


def test_banded_output_keeps_the_layout_and_autocast_dtype(monkeypatch):
    """The stitched map is what the whole map would be: channels-last stays channels-last (the
    GPU path), and under bf16 autocast it stays bfloat16."""
    monkeypatch.setattr(contract_module, "BAND_ABOVE_PIXELS", 0)
    monkeypatch.setattr(contract_module, "BAND_PIXELS", 24 * 7)
    layers = nn.Conv2d(3, 4, 3, 1, 1)
    image = torch.rand(1, 3, 50, 24)
    with torch.no_grad():
        assert conv_in_bands(layers, [image], margin=1).is_contiguous()
        last = image.contiguous(memory_format=torch.channels_last)
        banded = conv_in_bands(layers.to(memory_format=torch.channels_last), [last], margin=1)
        assert banded.is_contiguous(memory_format=torch.channels_last)
        assert not banded.is_contiguous()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert conv_in_bands(layers, [image], margin=1).dtype == torch.bfloat16
