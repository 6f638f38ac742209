"""RIFE's IFNet at tiny widths: its defaults, batch independence and argument checks."""

import pytest
import torch

from emavfi.models.rife.net import IFNet, check_flow_scale, check_widths


@pytest.fixture
def tiny_net():
    torch.manual_seed(0)
    return IFNet(widths=[4, 4, 4, 4, 4]).eval()


def test_defaults_are_the_middle_frame_at_flow_scale_one(tiny_net):
    torch.manual_seed(1)
    img0, img1 = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        default = tiny_net(img0, img1)
        explicit = tiny_net(img0, img1, 0.5, flow_scale=1.0)
        other_t = tiny_net(img0, img1, 0.25, flow_scale=1.0)
    assert torch.equal(default, explicit)
    assert not torch.allclose(default, other_t)  # the timestep does reach the network


def test_each_pair_of_a_batch_is_interpolated_on_its_own(tiny_net):
    torch.manual_seed(2)
    img0, img1 = torch.rand(3, 3, 64, 64), torch.rand(3, 3, 64, 64)
    timestep = torch.tensor([0.2, 0.5, 0.7])
    with torch.no_grad():
        batched = tiny_net(img0, img1, timestep)
        alone = [tiny_net(img0[i : i + 1], img1[i : i + 1], timestep[i].item()) for i in range(3)]
    assert torch.allclose(batched, torch.cat(alone), atol=1e-5)


def test_widths_are_five_even_numbers_from_2_to_1024():
    check_widths([2, 2, 2, 2, 2])
    check_widths([1024, 512, 96, 64, 2])
    message = r"RIFE widths must be 5 even numbers in \[2, 1024\], not "
    for widths in ([0] * 5, [1026] * 5, [3] * 5, [8] * 4, [8] * 6, [8.0] * 5):
        with pytest.raises(ValueError, match=message + rf"\[{widths[0]}"):
            check_widths(widths)


def test_flow_scale_is_a_power_of_two_from_1_16_to_4():
    for scale in (1 / 16, 0.25, 0.5, 1.0, 2.0, 4.0):
        check_flow_scale(scale)
    for scale in (1 / 32, 0.75, 3.0, 8.0, 0.0, -1.0):
        with pytest.raises(ValueError, match=rf"power of two in \[1/16, 4\], not {scale}"):
            check_flow_scale(scale)


def test_the_frame_is_the_last_stage_blend_clamped_to_the_unit_range(tiny_net):
    torch.manual_seed(3)
    # frames beyond [0, 1] make the blend overshoot both ways, so the clamp shows
    img0, img1 = torch.rand(1, 3, 64, 64) * 3 - 1, torch.rand(1, 3, 64, 64) * 3 - 1
    with torch.no_grad():
        frame = tiny_net(img0, img1, 0.5)
        aux = tiny_net(img0, img1, 0.5, return_aux=True)
    assert aux.merged.min() < 0 and aux.merged.max() > 1
    assert torch.equal(frame, aux.merged.clamp(0, 1)) and torch.equal(aux.pred, frame)
    assert len(aux.merged_stages) == len(aux.flow_stages) == 5
    assert torch.equal(aux.merged_stages[-1], aux.merged)
    assert torch.equal(aux.flow_stages[-1], aux.flow)


def test_a_bfloat16_network_keeps_its_float32_flow_out_of_the_convolutions(tiny_net):
    # IFNet keeps the flow in float32; each block casts it to the features' dtype before its
    # convolutions, else a bfloat16 network fails on a float32 input
    torch.manual_seed(3)
    img0, img1 = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    half = IFNet(widths=[4, 4, 4, 4, 4]).eval()
    half.load_state_dict(tiny_net.state_dict())
    half = half.to(torch.bfloat16)
    with torch.no_grad():
        full = tiny_net(img0, img1)
        out = half(img0.bfloat16(), img1.bfloat16())
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), full, atol=0.05)
