"""Our EMA-VFI reproduces the published network's tensors number for number."""

import pytest
import torch
from safetensors.torch import load_file

from emavfi.models.checkpoints import convert_published
from emavfi.models.ema_vfi.net import EMAVFI
from tests.shared_paths import FIXTURES

# The README's promise. Measured worst: 2.7e-5 (2+ threads) to 3.3e-5 (1 thread), in the flows,
# which are several pixels large; features, masks and frames stay within 1e-5.
TOLERANCE = 4e-5


@pytest.fixture(scope="module")
def reference():
    return load_file(str(FIXTURES / "tiny_F8_io.safetensors"))


@pytest.fixture  # built per test: mutmut then sees every test reach the network's __init__s
def published_tiny():
    state = torch.load(FIXTURES / "tiny_F8.pkl", map_location="cpu", weights_only=True)
    model = EMAVFI(width=8, window_size=7, depths=[2, 2, 2, 2, 2])
    model.load_state_dict(convert_published(state), strict=True)
    return model.eval()


def _max_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    assert got.shape == expected.shape
    return (got - expected).abs().max().item()


@pytest.mark.parametrize("tag", ["96x128", "64x160"])
def test_features_match_reference(published_tiny, reference, tag):
    with torch.no_grad():
        features = published_tiny.encode(reference[f"{tag}/img0"], reference[f"{tag}/img1"])
    for level in range(5):
        expected = reference[f"{tag}/appearance{level}"]
        assert _max_error(features.appearance[level], expected) <= TOLERANCE, level
    for level in (3, 4):
        expected = reference[f"{tag}/motion{level}"]
        assert _max_error(features.flow_motion[level], expected) <= TOLERANCE, level


@pytest.mark.parametrize("tag", ["96x128", "64x160"])
@pytest.mark.parametrize("timestep", ["0.5", "0.25"])
def test_outputs_match_reference(published_tiny, reference, tag, timestep):
    img0, img1 = reference[f"{tag}/img0"], reference[f"{tag}/img1"]
    with torch.no_grad():
        out = published_tiny(img0, img1, float(timestep), return_aux=True)
    got = {
        "flow_stage0": out.flow_stages[0],
        "flow_stage1": out.flow_stages[1],
        "flow": out.flow,
        "mask": out.mask,
        "merged": out.merged,
        "pred": out.pred,
    }
    for name, tensor in got.items():
        expected = reference[f"{tag}/t{timestep}/{name}"]
        assert _max_error(tensor, expected) <= TOLERANCE, name
    # The flows are several pixels large, so a wrong warp could not pass by accident.
    assert out.flow.abs().max() > 5


@pytest.mark.parametrize("tag", ["96x128", "64x160"])
def test_one_encoding_serves_every_timestep(published_tiny, reference, tag):
    """encode once, decode at each t in turn (and again): every output is the reference's, which
    ran the whole network per timestep, so decode neither alters nor depends on earlier calls."""
    img0, img1 = reference[f"{tag}/img0"], reference[f"{tag}/img1"]
    with torch.no_grad():
        features = published_tiny.encode(img0, img1)
        for timestep in ("0.25", "0.5", "0.25"):
            out = published_tiny.decode(img0, img1, float(timestep), features, return_aux=True)
            for name in ("flow", "mask", "pred"):
                expected = reference[f"{tag}/t{timestep}/{name}"]
                assert _max_error(getattr(out, name), expected) <= TOLERANCE, (timestep, name)


def test_one_model_serves_both_sizes(published_tiny, reference):
    """Masks are per shape: reusing a model across sizes with equal padded area stays exact."""
    with torch.no_grad():
        for tag in ["96x128", "64x160", "96x128"]:
            img0, img1 = reference[f"{tag}/img0"], reference[f"{tag}/img1"]
            pred = published_tiny(img0, img1, 0.5)
            assert _max_error(pred, reference[f"{tag}/t0.5/pred"]) <= TOLERANCE


def test_tensor_timestep_matches_floats(published_tiny, reference):
    img0, img1 = reference["64x160/img0"], reference["64x160/img1"]
    pair0, pair1 = torch.cat([img0, img0]), torch.cat([img1, img1])
    with torch.no_grad():
        batched = published_tiny(pair0, pair1, torch.tensor([0.5, 0.25]))
    assert _max_error(batched[:1], reference["64x160/t0.5/pred"]) <= TOLERANCE
    assert _max_error(batched[1:], reference["64x160/t0.25/pred"]) <= TOLERANCE
