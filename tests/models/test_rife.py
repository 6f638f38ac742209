"""RIFE v4 (Practical-RIFE v4.25): the released checkpoint by path, its reference vectors, the CLI."""

import json
import re

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from emavfi.cli.main import main
from emavfi.errors import EmavfiError
from emavfi.interpolator import Interpolator
from emavfi.models import checkpoints
from emavfi.models.checkpoints import load_model, save_checkpoint
from emavfi.models.registry import create_model
from tests.shared_paths import SHARED

RIFE = SHARED / "fixtures" / "rife_v425"
FLOWNET = RIFE / "flownet.pkl"
TINY_WIDTHS = [8, 8, 8, 8, 8]


@pytest.fixture  # loaded per test: mutmut then sees every test reach the network's __init__s
def flownet():
    return load_model(FLOWNET)


def test_released_checkpoint_loads_by_path_as_bgr(flownet):
    assert flownet.spec.name == "rife-4.25" and flownet.spec.channel_order == "BGR"
    assert flownet.spec.arch == {"widths": [192, 128, 96, 64, 32]}
    assert flownet.spec.pad_multiple == 64 and not flownet.training
    raw = torch.load(FLOWNET, weights_only=True, map_location="cpu")
    used = {k: v for k, v in raw.items() if not k.startswith(("teacher.", "caltime."))}
    assert len(used) < len(raw)  # the file does hold entries that must be ignored
    state = flownet.state_dict()
    assert state.keys() == used.keys()
    assert all(torch.equal(state[k], used[k]) for k in used)


REFERENCE_CASES = [  # (size, t, flow_scale): both sizes at S = 1, and S = 0.5 at 128x256
    ("128x192", "0.5", "1.0"),
    ("128x192", "0.25", "1.0"),
    ("128x256", "0.5", "1.0"),
    ("128x256", "0.25", "1.0"),
    ("128x256", "0.5", "0.5"),
    ("128x256", "0.25", "0.5"),
]


@pytest.fixture(scope="module")
def rife_reference():
    return load_file(str(RIFE / "rife_v425_io.safetensors"))


def test_reference_holds_exactly_the_cases_checked(rife_reference):
    cases = {
        tuple(re.fullmatch(r"(\d+x\d+)/t([\d.]+)/s([\d.]+)/\w+", key).groups())
        for key in rife_reference
        if not key.endswith(("/img0", "/img1"))
    }
    assert cases == set(REFERENCE_CASES)


@pytest.mark.parametrize("tag, t, scale", REFERENCE_CASES)
def test_reference_vectors_are_reproduced(flownet, rife_reference, tag, t, scale):
    img0, img1 = rife_reference[f"{tag}/img0"], rife_reference[f"{tag}/img1"]
    with torch.no_grad():
        out = flownet(img0, img1, float(t), return_aux=True, flow_scale=float(scale))
    assert len(out.flow_stages) == 5
    ours = {
        "flow": out.flow,
        "flow_block0": out.flow_stages[0],
        "mask": out.mask,
        "pred": out.merged,  # the reference's frame is not clamped
    }
    for name, tensor in ours.items():
        key = f"{tag}/t{t}/s{scale}/{name}"
        assert tensor.shape == rife_reference[key].shape, key
        assert (tensor - rife_reference[key]).abs().max().item() < 1e-4, key


def _write_pair(tmp_path, height=37, width=53):
    """Two BGR frames of odd size: a smooth texture moved 3 px right."""
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.random((12, 16, 3)), (width + 8, height), cv2.INTER_CUBIC)
    texture = (texture.clip(0, 1) * 255).astype(np.uint8)
    paths = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(paths[0]), texture[:, 3 : 3 + width])
    cv2.imwrite(str(paths[1]), texture[:, :width])
    return paths


def _direct(model, bgr0, bgr1, t, flow_scale):
    """The model called by hand on BGR uint8 frames: replicate padding to 64 / flow_scale."""
    to_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    img0, img1 = to_tensor(bgr0), to_tensor(bgr1)
    height, width = img0.shape[2:]
    multiple = int(64 / flow_scale)
    pad = (0, (-width) % multiple, 0, (-height) % multiple)
    img0, img1 = F.pad(img0, pad, mode="replicate"), F.pad(img1, pad, mode="replicate")
    with torch.no_grad():
        pred = model(img0, img1, t, flow_scale=flow_scale)[0, :, :height, :width]
    return (pred.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


@pytest.mark.parametrize(
    "options, flow_scale", [([], 1.0), (["--scale", "0.5"], 0.5), (["--fast"], 0.5)]
)
def test_pair_cli_with_the_released_checkpoint(flownet, tmp_path, options, flow_scale):
    a, b = _write_pair(tmp_path)
    out = tmp_path / "out"
    argv = ["pair", str(a), str(b), "-o", str(out), "--model", str(FLOWNET), "--device", "cpu"]
    # fp32: the reference below is float32 (auto would pick bf16 on a CPU that has it)
    assert main([*argv, "--times", "0.25", "--precision", "fp32", *options]) == 0
    (written,) = out.glob("*.png")
    result = cv2.imread(str(written))
    assert result.shape == (37, 53, 3)  # padded for the network, cropped back
    bgr0, bgr1 = cv2.imread(str(a)), cv2.imread(str(b))
    expected = _direct(flownet, bgr0, bgr1, 0.25, flow_scale)
    assert np.abs(result.astype(int) - expected).max() <= 1
    # the channel order matters: the same call on RGB frames gives another picture
    swapped = _direct(flownet, bgr0[..., ::-1].copy(), bgr1[..., ::-1].copy(), 0.25, flow_scale)
    assert np.abs(result.astype(int) - swapped[..., ::-1]).max() > 1


def test_scale_pads_to_64_over_scale_and_crops_back(flownet):
    seen = []
    hook = flownet.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[2:]))
    try:
        for scale, padded in ((1.0, (64, 64)), (0.5, (128, 128)), (0.25, (256, 256))):
            interp = Interpolator(flownet, device="cpu", scale=scale)
            (out,) = interp(torch.rand(1, 3, 37, 53), torch.rand(1, 3, 37, 53), [0.5])
            assert out.shape == (1, 3, 37, 53) and tuple(seen[-1]) == padded
    finally:
        hook.remove()
    with pytest.raises(EmavfiError, match="takes scale 1, 0.5, 0.25, not 0.3"):
        Interpolator(flownet, device="cpu", scale=0.3)


def _fails(capsys, argv, *phrases):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for phrase in phrases:
        assert phrase in err, err


def test_registry_name_without_weights_is_one_line(tmp_path, capsys):
    a, b = _write_pair(tmp_path)
    argv = ["pair", str(a), str(b), "-o", str(tmp_path / "o"), "--model", "rife-4.25"]
    _fails(capsys, argv, "no packaged weights", "path/to/flownet.pkl")
    triplet = tmp_path / "triplet" / "000"
    triplet.mkdir(parents=True)
    for name, source in (("frame_00", a), ("frame_01_gt", a), ("frame_02", b)):
        cv2.imwrite(str(triplet / f"{name}.png"), cv2.imread(str(source)))
    dataset = f"triplet:{tmp_path / 'triplet'}"
    argv = ["eval", "--model", "rife-4.25", "--dataset", dataset, "--device", "cpu"]
    _fails(capsys, argv, "no packaged weights", "flownet.pkl")


def test_scale_the_network_cannot_take_is_one_line(tmp_path, capsys):
    a, b = _write_pair(tmp_path)
    argv = ["pair", str(a), str(b), "-o", str(tmp_path / "o"), "--model", str(FLOWNET)]
    _fails(capsys, [*argv, "--scale", "0.3"], "takes scale 1, 0.5, 0.25")


def test_eval_side_by_side_with_a_learned_model(tmp_path, capsys):
    a, b = _write_pair(tmp_path, 32, 40)
    item = tmp_path / "triplet" / "000"
    item.mkdir(parents=True)
    for name, source in (("frame_00", a), ("frame_01_gt", a), ("frame_02", b)):
        cv2.imwrite(str(item / f"{name}.png"), cv2.imread(str(source)))
    out = tmp_path / "eval"
    argv = ["eval", "--model", "blend", "--model", str(FLOWNET), "--device", "cpu", "--no-html"]
    assert main([*argv, "--dataset", f"triplet:{tmp_path / 'triplet'}", "-o", str(out)]) == 0
    samples = json.loads((out / "results.json").read_text())["samples"]
    assert sorted(s["model"] for s in samples) == ["blend", "flownet"]


def _tiny_rife_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return create_model("rife-4.25", widths=TINY_WIDTHS).state_dict()


def test_wrapped_checkpoint_with_teacher_loads_and_keeps_its_widths(tmp_path):
    state = {f"module.{k}": v for k, v in _tiny_rife_state().items()}
    state["module.teacher.lastconv.0.weight"] = torch.zeros(3)
    state["caltime.0.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "flownet.pkl")
    model = load_model(tmp_path / "flownet.pkl")
    assert model.spec.name == "rife-4.25-like" and model.spec.channel_order == "BGR"
    assert model.spec.arch == {"widths": TINY_WIDTHS}
    expected = _tiny_rife_state()
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())


def _hostile(state: dict, case: str) -> dict:
    state = dict(state)
    if case == "wrong shape":
        state["block2.convblock.3.conv.weight"] = torch.zeros(8, 8, 5, 5)
    elif case == "huge width":  # zero elements: a tiny file announcing a huge network
        state["block0.conv0.1.0.weight"] = torch.zeros(100_000, 0, 3, 3)
    elif case == "odd width":
        state["block1.conv0.1.0.weight"] = torch.zeros(7, 4, 3, 3)
    elif case == "four blocks":
        state = {k: v for k, v in state.items() if not k.startswith("block4.")}
    elif case == "no encoder":
        state = {k: v for k, v in state.items() if not k.startswith("encode.")}
    elif case == "flat width tensor":
        state["block3.conv0.1.0.weight"] = torch.zeros(8)
    return state


# case -> (phrase of the error, whether a shape-only network was built on the meta device)
HOSTILE = {
    "wrong shape": ("wrong shape 1 (e.g. block2.convblock.3.conv.weight)", True),
    "huge width": ("widths must be 5 even numbers", True),
    "odd width": ("widths must be 5 even numbers", True),
    "four blocks": ("widths must be 5 even numbers", True),
    "no encoder": ("without the feature encoder", False),
    "flat width tensor": ("without a 4-d block3.conv0.1.0.weight", False),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_rife_like_files_fail_in_one_line_before_building(
    case, tmp_path, capsys, monkeypatch
):
    path = tmp_path / "flownet.pkl"
    torch.save(_hostile(_tiny_rife_state(), case), path)
    built_on = []
    real_create = checkpoints.create_model

    def spy(name, **arch):
        built_on.append(torch.empty(0).device.type)  # the default device where it is built
        return real_create(name, **arch)

    monkeypatch.setattr(checkpoints, "create_model", spy)
    a, b = _write_pair(tmp_path)
    argv = ["pair", str(a), str(b), "-o", str(tmp_path / "o"), "--model", str(path)]
    phrase, checked_on_meta = HOSTILE[case]
    _fails(capsys, argv, "flownet.pkl", phrase)
    assert built_on == (["meta"] if checked_on_meta else [])  # nothing real was built


def test_neither_ema_nor_rife_is_one_line(tmp_path, capsys):
    path = tmp_path / "other.pkl"
    torch.save({"backbone.conv.weight": torch.zeros(4, 3, 3, 3)}, path)
    a, b = _write_pair(tmp_path)
    argv = ["pair", str(a), str(b), "-o", str(tmp_path / "o"), "--model", str(path)]
    _fails(capsys, argv, "not an EMA-VFI or Practical-RIFE v4 checkpoint")


def test_our_format_round_trips_rife(flownet, tmp_path):
    path = save_checkpoint(flownet, tmp_path / "rife.safetensors", training={"source": "pkl"})
    loaded = load_model(path)
    assert loaded.spec.name == "rife-4.25" and loaded.spec.arch == flownet.spec.arch
    assert loaded.spec.channel_order == "BGR" and loaded.spec.pad_multiple == 64
    original, restored = flownet.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    tiny = create_model("rife-4.25", widths=TINY_WIDTHS)
    reloaded = load_model(save_checkpoint(tiny, tmp_path / "tiny.safetensors"))
    assert reloaded.spec.arch == {"widths": TINY_WIDTHS}
