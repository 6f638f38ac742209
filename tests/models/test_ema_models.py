"""EMA-VFI at a tiny size: its parts behave as documented (the contract: test_contract.py)."""

import math

import pytest
import torch
import torch.nn.functional as F

from emavfi.errors import EmavfiError
from emavfi.models.contract import backward_warp, resize_flow
from emavfi.models.ema_vfi import net, refine
from emavfi.models.ema_vfi.attention import MotionFormerBlock
from emavfi.models.ema_vfi.warp import downscale_flow, flow_pyramid
from emavfi.models.registry import create_model, get_spec
from emavfi.runtime.backends import sample_pair

TINY = {"width": 4, "depths": [1, 1, 1, 2, 2]}


def _tiny(name: str, **extra):
    spec_arch = get_spec(name).arch
    overrides = {k: v for k, v in TINY.items() if k in spec_arch}
    return create_model(name, **overrides, **extra)


def _frames(batch=2, height=64, width=96, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.rand(batch, 3, height, width, generator=generator),
        torch.rand(batch, 3, height, width, generator=generator),
    )


def test_flow_scale_keeps_full_resolution_outputs():
    torch.manual_seed(0)
    model = _tiny("ema-tiny").eval()
    img0, img1 = _frames(batch=1, height=96, width=128)
    with torch.no_grad():
        full = model(img0, img1, 0.5, return_aux=True)
        half = model(img0, img1, 0.5, return_aux=True, flow_scale=0.5)
    assert half.pred.shape == full.pred.shape and half.flow.shape == full.flow.shape
    assert not torch.allclose(half.flow, full.flow)  # the motion really was estimated smaller


def test_upscaled_flow_vectors_grow_with_the_size_ratio():
    flow = torch.tensor([1.0, -2.0, 3.0, 0.5]).view(1, 4, 1, 1).repeat(2, 1, 8, 6)
    doubled = resize_flow(flow, (16, 12))
    assert doubled.shape == (2, 4, 16, 12)
    assert torch.allclose(doubled, 2 * flow.repeat(1, 1, 2, 2))
    # unequal ratios: x components (channels 0, 2) by the width's, y (1, 3) by the height's
    stretched = resize_flow(flow, (16, 18))
    expected = torch.tensor([3.0, -4.0, 9.0, 1.0]).view(1, 4, 1, 1).expand(2, 4, 16, 18)
    assert torch.allclose(stretched, expected)


def test_flow_estimated_at_half_scale_keeps_its_full_size_magnitude():
    """A known 8 px shift: the flow at t = 0.5 is 4 px either way, at full or half scale."""
    torch.manual_seed(0)
    model = create_model("ema-tiny", flow_init="dis").eval()  # stage 0 is DIS flow: known values
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, 32, 32, generator=generator)
    img0 = F.interpolate(coarse, size=(128, 128), mode="bicubic").clamp(0, 1)
    img1 = torch.roll(img0, 8, dims=3)
    with torch.no_grad():
        for scale in (1.0, 0.5):
            stage0 = model(img0, img1, 0.5, return_aux=True, flow_scale=scale).flow_stages[0]
            assert stage0.shape == (1, 4, 128, 128)
            inner = stage0[0, :, 16:-16, 16:-16].flatten(1).median(dim=1).values
            assert torch.allclose(inner, torch.tensor([-4.0, 0.0, 4.0, 0.0]), atol=0.25), scale


def test_refine_at_scale_runs_the_unet_small_and_blends_at_full_size():
    torch.manual_seed(0)
    model = _tiny("ema-tiny").eval()
    img0, img1 = _frames(batch=1, height=128, width=192)
    sizes = []
    hook = model.unet.register_forward_pre_hook(
        lambda _, args: sizes.append(tuple(args[0].shape[2:]))
    )
    with torch.no_grad():
        flow_only = model(img0, img1, 0.5, return_aux=True, flow_scale=0.5)
        fast = model(img0, img1, 0.5, return_aux=True, flow_scale=0.5, refine_at_scale=True)
    hook.remove()
    assert sizes == [(128, 192), (64, 96)]  # published hr_inference refines at full size
    assert fast.pred.shape == img0.shape and fast.merged.shape == img0.shape
    # motion is the same estimate; only the refinement moved to the small frames
    assert torch.allclose(fast.flow, flow_only.flow, atol=1e-5)
    assert torch.allclose(fast.merged, flow_only.merged, atol=1e-5)
    assert not torch.allclose(fast.pred, flow_only.pred)


def test_refine_at_scale_keeps_the_unet_multiple_for_any_scale():
    model = _tiny("ema-tiny").eval()
    img0, img1 = _frames(batch=1, height=96, width=160)
    with torch.no_grad():
        pred = model(img0, img1, 0.5, flow_scale=0.6, refine_at_scale=True)
    assert pred.shape == img0.shape


def test_timestep_count_must_match_batch():
    model = _tiny("ema-tiny").eval()
    img0, img1 = _frames(batch=2)
    with pytest.raises(ValueError, match="3 values for a batch of 2"):
        model(img0, img1, torch.tensor([0.1, 0.2, 0.3]))


def test_deform_fusion_adds_trainable_parameters():
    torch.manual_seed(0)
    plain = _tiny("ema-tiny", deform_fusion=False)
    fused = _tiny("ema-tiny", deform_fusion=True)
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(fused) > count(plain)
    assert not any(k.startswith("fusion.") for k in plain.state_dict())
    img0, img1 = _frames(batch=1)
    out = fused(img0, img1, 0.5, return_aux=True)
    (out.pred.mean() + out.merged.mean()).backward()
    for level in fused.fusion.levels:
        assert level.offset_mask.weight.grad.abs().sum() > 0
        assert level.deform.weight.grad.abs().sum() > 0
    with torch.no_grad():
        assert plain(img0, img1, 0.5).shape == img0.shape


def test_deform_fusion_starts_as_a_plain_convolution():
    torch.manual_seed(0)
    level = _tiny("ema-tiny", deform_fusion=True).fusion.levels[0]
    context0, context1 = torch.rand(1, 4, 16, 16), torch.rand(1, 4, 16, 16)
    fused0, fused1 = level(context0, context1, torch.randn(1, 4, 16, 16), torch.randn(1, 1, 16, 16))
    plain = torch.nn.functional.conv2d(
        torch.cat([context0, context1], 1), level.deform.weight, level.deform.bias, padding=1
    )
    assert torch.allclose(torch.cat([fused0 - context0, fused1 - context1], 1), plain, atol=1e-5)


def test_warp_samples_along_x_and_y_with_border_replication():
    source = torch.arange(20.0).view(1, 1, 4, 5)  # value = 5 * y + x
    flow = torch.zeros(1, 2, 4, 5)
    flow[:, 0], flow[:, 1] = 1.0, -1.0  # take each pixel from (x + 1, y - 1)
    ys, xs = torch.meshgrid(torch.arange(4), torch.arange(5), indexing="ij")
    expected = 5 * (ys - 1).clamp(min=0) + (xs + 1).clamp(max=4)
    assert torch.allclose(backward_warp(source, flow)[0, 0], expected.float())
    flow[:, 0], flow[:, 1] = 0.25, 0.5  # bilinear between pixels
    inner = backward_warp(source, flow)[0, 0, :3, :4]
    assert torch.allclose(inner, 5 * (ys[:3, :4] + 0.5) + xs[:3, :4] + 0.25, atol=1e-5)
    assert backward_warp(source.half(), flow).dtype == torch.float16


def test_flow_pyramid_halves_size_and_values():
    flow = torch.tensor([4.0, -2.0, 1.0, 8.0]).view(1, 4, 1, 1).expand(2, 4, 8, 12)
    pyramid = flow_pyramid(flow, 3)
    assert [tuple(level.shape) for level in pyramid] == [(2, 4, 8, 12), (2, 4, 4, 6), (2, 4, 2, 3)]
    for level, level_flow in enumerate(pyramid):
        assert torch.allclose(level_flow, flow[..., : 8 >> level, : 12 >> level] / 2**level)
    assert torch.equal(downscale_flow(flow), pyramid[1])


def test_attention_mask_cache_is_bounded_and_per_shape():
    block = MotionFormerBlock(dim=8, motion_dim=8, num_heads=2, window_size=7, shift_size=3)
    first = block.attention_mask(12, 16, torch.device("cpu"))
    other = block.attention_mask(16, 12, torch.device("cpu"))
    assert first.shape == other.shape and not torch.equal(first, other)
    for size in range(8, 30):
        block.attention_mask(size, size, torch.device("cpu"))
    assert len(block._mask_cache) <= 8


def test_dis_flow_init_starts_from_the_classical_flow():
    """flow_init="dis": stage 0 is the classical engine's flow; the 1/16 head is not built."""
    torch.manual_seed(0)
    model = create_model("ema-tiny", flow_init="dis").eval()
    assert not any(name.startswith("block.0.") for name, _ in model.named_parameters())
    img0 = torch.rand(2, 3, 64, 64)
    img1 = torch.roll(img0, 3, dims=3)
    timestep = torch.tensor([0.25, 0.6])
    with torch.no_grad():
        out = model(img0, img1, timestep, return_aux=True)
    engine = create_model("classical")(img0, img1, timestep, return_aux=True)
    assert len(out.flow_stages) == 2
    assert torch.equal(out.flow_stages[0], engine.flow)
    assert out.pred.shape == (2, 3, 64, 64)
    with pytest.raises(ValueError, match="flow_init"):
        create_model("ema-tiny", flow_init="raft")


@pytest.mark.parametrize("height, width", [(64, 320), (320, 64)])
def test_frames_over_the_tile_limit_are_refined_in_tiles_to_the_same_frame(
    monkeypatch, height, width
):
    """The wiring of tiled refinement (its seams, at size: test_refine_tiles.py): a frame of
    more pixels than ``refine_tile_pixels`` goes through ``refine.tiles``, one of exactly that
    many does not, and the tiles give the whole frame's output, item by item of the batch."""
    torch.manual_seed(0)
    model = _tiny("ema-tiny").eval()
    img0, img1 = _frames(batch=2, height=height, width=width)
    cut = []
    monkeypatch.setattr(net, "tiles", lambda *args: cut.append(args) or refine.tiles(*args))
    with torch.no_grad():
        model.refine_tile_pixels = None  # never tiled
        whole = model(img0, img1, 0.3, return_aux=True)
        model.refine_tile_pixels = height * width
        assert torch.equal(model(img0, img1, 0.3), whole.pred) and cut == []
        # cores of 64 x 64 with margins of 128: five tiles, the last two not at the frame's corner
        model.refine_tile_pixels = 64 * 64
        tiled = model(img0, img1, 0.3)
    assert cut == [(height, width, 64 * 64)]
    assert not torch.allclose(whole.pred, whole.merged, atol=1e-2)  # the residual matters
    assert torch.allclose(tiled, whole.pred, atol=1e-5)


def test_flow_scale_upsamples_the_motion_found_on_the_resized_frames():
    """``flow_scale=0.5``: flow and mask are what the network finds on the frames resized to
    half, upsampled to full size (vectors doubled), both aligned on pixel centres."""
    torch.manual_seed(0)
    model = _tiny("ema-tiny").eval()
    img0, img1 = _frames(batch=1, height=128, width=192)
    small = F.interpolate(torch.cat([img0, img1], 1), size=(64, 96), mode="bilinear")
    with torch.no_grad():
        scaled = model(img0, img1, 0.3, return_aux=True, flow_scale=0.5)
        on_small = model(small[:, :3], small[:, 3:], 0.3, return_aux=True)
    assert torch.allclose(scaled.flow, resize_flow(on_small.flow, (128, 192)), atol=1e-5)
    logit = torch.logit(on_small.mask.double())
    upsampled = F.interpolate(logit, size=(128, 192), mode="bilinear", align_corners=False)
    assert torch.allclose(scaled.mask.double(), torch.sigmoid(upsampled), atol=1e-5)


def test_every_stage_blends_its_two_warped_frames():
    """Each stage's merged frame mixes the frames warped by that stage's flow, with weights
    summing to one: it never leaves the range of the two; the last stage's is ``merged``."""
    torch.manual_seed(0)
    model = _tiny("ema-tiny").eval()
    img0, img1 = _frames(batch=2)
    with torch.no_grad():
        out = model(img0, img1, 0.3, return_aux=True)
    assert len(out.merged_stages) == len(out.flow_stages) == 2
    assert out.merged_stages[-1] is out.merged
    for flow, merged in zip(out.flow_stages, out.merged_stages):
        warped0, warped1 = backward_warp(img0, flow[:, :2]), backward_warp(img1, flow[:, 2:4])
        assert bool((merged >= torch.minimum(warped0, warped1) - 1e-6).all())
        assert bool((merged <= torch.maximum(warped0, warped1) + 1e-6).all())


def test_the_default_timestep_is_the_middle():
    torch.manual_seed(0)
    model = _tiny("ema-tiny").eval()
    img0, img1 = _frames(batch=1)
    with torch.no_grad():
        assert torch.equal(model(img0, img1), model(img0, img1, 0.5))


def test_dis_runs_once_per_pair_whatever_the_number_of_timesteps(monkeypatch):
    """``flow_init="dis"``: the classical flow of a pair is computed on the first timestep and
    reused by the next ones, each of which still gets its own flow at t."""
    from emavfi.flow import dis

    torch.manual_seed(0)
    model = create_model("ema-tiny", flow_init="dis").eval()
    img0 = torch.rand(1, 3, 64, 64)
    img1 = torch.roll(img0, 3, dims=3)
    with torch.no_grad():
        fresh = [model(img0, img1, t) for t in (0.25, 0.75)]
        pairs = []
        real_pair_flows = dis.batch_pair_flows
        monkeypatch.setattr(
            dis, "batch_pair_flows", lambda a, b: pairs.append(a.shape) or real_pair_flows(a, b)
        )
        features = model.encode(img0, img1)
        reused = [model.decode(img0, img1, t, features) for t in (0.25, 0.75)]
    assert pairs == [img0.shape]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(reused, fresh))
    assert not torch.allclose(reused[0], reused[1])


def test_deform_fusion_feeds_the_unet_the_fused_context_of_every_level():
    """``deform_fusion=True``: the warped context of both frames, the flow pyramid and the mask
    go through the fusion, and the U-Net refines from what it returns."""
    torch.manual_seed(0)
    model = _tiny("ema-tiny", deform_fusion=True).eval()
    img0, img1 = _frames(batch=1)
    fused, unet_inputs = [], []
    model.fusion.register_forward_hook(lambda module, args, out: fused.append((args, out)))
    model.unet.register_forward_pre_hook(lambda module, args: unet_inputs.append(args))
    with torch.no_grad():
        out = model(img0, img1, 0.5, return_aux=True)
    (((context0, context1, flows, mask), (fused0, fused1)),) = fused
    assert len(context0) == len(context1) == len(flows) == len(fused0) == len(fused1) == 5
    assert [f.shape[2:] for f in flows] == [c.shape[2:] for c in context0]
    assert torch.equal(flows[0], out.flow) and mask.shape == (1, 1, 64, 96)
    ((_, unet_context0, unet_context1),) = unet_inputs
    assert unet_context0 is fused0 and unet_context1 is fused1


def test_a_bfloat16_network_runs_on_bfloat16_frames():
    """The flow stays float32 (warping grids) and is cast to the frames' dtype where the U-Net
    reads it, so a network converted to bfloat16 runs end to end, close to float32."""
    torch.manual_seed(0)
    model = _tiny("ema-tiny").eval()
    img0, img1 = _frames(batch=1)
    with torch.no_grad():
        full = model(img0, img1, 0.5)
        half = model.to(torch.bfloat16)(img0.bfloat16(), img1.bfloat16(), 0.5)
    assert half.dtype == torch.bfloat16
    assert (half.float() - full).abs().mean() < 0.01  # measured: 0.002


def test_motion_is_estimated_at_a_multiple_of_16_and_refined_at_one_of_32():
    """``flow_scale=0.5`` on 96 x 160 frames: the motion at the nearest multiple of 16 (48 x 80,
    the flow heads' own multiple); with ``refine_at_scale`` the U-Net's multiple, 32, rules."""
    torch.manual_seed(0)
    model = _tiny("ema-tiny").eval()
    img0, img1 = _frames(batch=1, height=96, width=160)
    sizes = []
    model.feature_bone.register_forward_pre_hook(
        lambda _, args: sizes.append(tuple(args[0].shape[2:]))
    )
    model.unet.register_forward_pre_hook(lambda _, args: sizes.append(("unet", *args[0].shape[2:])))
    with torch.no_grad():
        model(img0, img1, 0.5, flow_scale=0.5)
        model(img0, img1, 0.5, flow_scale=0.5, refine_at_scale=True)
    assert sizes == [(48, 80), (96, 160), ("unet", 96, 160), (64, 64), ("unet", 64, 64)]


@pytest.mark.parametrize(
    "width, depths, message",
    [
        (6, [1, 1, 1, 2, 2], "EMA-VFI width must be a multiple of 4 (>= 4), not 6"),
        (0, [1, 1, 1, 2, 2], "EMA-VFI width must be a multiple of 4 (>= 4), not 0"),
        (4, [1, 1, 1, 2], "EMA-VFI depths must be five positive numbers, not [1, 1, 1, 2]"),
        (4, [1, 1, 0, 2, 2], "EMA-VFI depths must be five positive numbers, not [1, 1, 0, 2, 2]"),
        # 96 // 5 = 19 motion channels at stage 4 do not split into 3 heads (stage 5's 96 into 6 do)
        (12, [1, 1, 1, 5, 2], "EMA-VFI width 12 and depths [1, 1, 1, 5, 2] give unusable heads"),
    ],
)
def test_widths_and_depths_that_build_no_network_are_refused_in_one_line(width, depths, message):
    with pytest.raises(EmavfiError) as info:
        net.arch_dims(width, depths)
    assert str(info.value) == message


def test_arch_dims_follow_the_published_model_config():
    """The published ``init_model_config(F, W, depth)``: embed dims F x 2**i, motion dims
    8F / depth[3] and 16F / depth[4] (the two attention stages, told apart here), heads F/4, F/2."""
    assert net.arch_dims(8, [2, 2, 2, 1, 4]) == {
        "embed_dims": [8, 16, 32, 64, 128],
        "motion_dims": [0, 0, 0, 64, 32],
        "num_heads": [2, 4],
    }
    # 3 motion channels at stage 4 fit its 3 heads (not stage 5's 6): a usable network
    assert net.arch_dims(12, [1, 1, 1, 32, 2])["motion_dims"] == [0, 0, 0, 3, 96]


def test_a_new_network_refines_frames_above_1080p_in_tiles():
    """Tiling is on by default (the README's 4K within 4 GB): 1080p whole, anything larger tiled."""
    limit = _tiny("ema-tiny").refine_tile_pixels
    assert limit is not None and 1920 * 1080 <= limit < 2560 * 1440


def test_linear_layers_start_from_the_published_initialisation():
    """Truncated normal weights of std 0.02 and zero biases (training from scratch starts here)."""
    torch.manual_seed(0)
    linears = [m for m in _tiny("ema-tiny").modules() if isinstance(m, torch.nn.Linear)]
    weights = torch.cat([m.weight.detach().flatten() for m in linears])
    assert len(linears) > 4 and 0.015 < float(weights.std()) < 0.025
    assert all(m.bias is None or not m.bias.any() for m in linears)


def test_convolutions_start_from_the_published_fan_out_initialisation():
    """Normal weights of std sqrt(2 / fan_out) (fan_out = k*k*out / groups: the depthwise
    convolutions of the MLPs are 9 wide) and zero biases, in the encoder and the refiner."""
    torch.manual_seed(0)
    model = _tiny("ema-tiny")
    convs = [
        m
        for part in (model.feature_bone, model.unet)
        for m in part.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    depthwise = [m for m in convs if m.groups > 1]
    assert len(convs) > 20 and depthwise and all(m.bias is not None for m in convs)
    for group in (convs, depthwise):
        scaled = torch.cat(
            [
                m.weight.detach().flatten()
                / math.sqrt(2 * m.groups / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels))
                for m in group
            ]
        )
        assert abs(float(scaled.mean())) < 0.05 and 0.95 < float(scaled.std()) < 1.05
    assert not any(m.bias.any() for m in convs)


def test_the_default_arguments_build_the_published_base_network():
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        default = net.EMAVFI().state_dict()
        base = create_model("ema-base").state_dict()
    assert {k: v.shape for k, v in default.items()} == {k: v.shape for k, v in base.items()}


def test_tiles_are_twice_as_large_under_16_bit_autocast(monkeypatch):
    """The same memory per tile: twice the pixels at two bytes a value (4K: 6 tiles, not 12)."""
    torch.manual_seed(0)
    model = _tiny("ema-cpu").eval()
    img0, img1 = sample_pair(256, 416)
    model.refine_tile_pixels = 100_000  # 256 x 416 = 106,496: tiled
    monkeypatch.setattr(net, "REFINE_CORE_PIXELS", 96 * 96)
    counts = []

    def counted(*args):
        counts.append(len(refine.tiles(*args)))
        return refine.tiles(*args)

    monkeypatch.setattr(net, "tiles", counted)
    with torch.no_grad():
        model(img0, img1, 0.5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(img0, img1, 0.5)
    assert counts == [15, 8]  # cores of 96 x 96, then 128 x 128 (at 2 bytes a value)


def test_the_last_timestep_frees_the_pairs_dis_flows():
    """decode(last=True) drops the DIS flows it has used; earlier timesteps keep them."""
    torch.manual_seed(0)
    model = _tiny("ema-cpu").eval()
    img0, img1 = sample_pair(64, 96)
    with torch.no_grad():
        features = model.encode(img0, img1)
        first = model.decode(img0, img1, 0.3, features)
        assert features.dis_pairs is not None
        second = model.decode(img0, img1, 0.7, features, last=True)
        assert features.dis_pairs is None
        assert float((first - model(img0, img1, 0.3)).abs().max()) < 1e-6
        assert float((second - model(img0, img1, 0.7)).abs().max()) < 1e-6
