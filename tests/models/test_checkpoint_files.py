"""Checkpoint files as files: half precision, channel order, the atomic write, load errors."""

import dataclasses
import os
import stat

import pytest
import safetensors.torch
import torch

from emavfi.errors import EmavfiError
from emavfi.models import checkpoints, registry
from emavfi.models.checkpoints import (
    check_arch,
    convert_published,
    infer_published_arch,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from emavfi.models.registry import create_model, get_spec
from tests.shared_paths import FIXTURES


def test_half_stores_float16_and_loads_back_as_float32(tmp_path):
    torch.manual_seed(0)
    model = create_model("ema-tiny")
    model.register_buffer("steps", torch.tensor([70000]))  # an integer: too big for float16
    path = save_checkpoint(model, tmp_path / "half.safetensors", half=True)
    state, _ = load_checkpoint(path)
    assert state["steps"].dtype == torch.int64 and state["steps"].item() == 70000
    floats = {k: v for k, v in state.items() if k != "steps"}
    assert {v.dtype for v in floats.values()} == {torch.float16}
    # the file without the extra buffer loads into float32, rounded to float16's precision
    del model.steps
    path = save_checkpoint(model, tmp_path / "half.safetensors", half=True)
    loaded = load_model(path).state_dict()
    for key, value in model.state_dict().items():
        assert loaded[key].dtype == torch.float32
        assert torch.equal(loaded[key], value.half().float()), key


def test_bgr_channel_order_survives_the_round_trip(tmp_path):
    model = create_model("ema-tiny")  # registered as RGB
    model.spec = dataclasses.replace(model.spec, channel_order="BGR")
    path = save_checkpoint(model, tmp_path / "bgr.safetensors")
    assert load_checkpoint(path)[1]["channel_order"] == "BGR"
    assert load_model(path).spec.channel_order == "BGR"


def test_written_beside_the_target_under_a_hidden_name_then_renamed(tmp_path, monkeypatch):
    """The rename is atomic only within one folder (one file system)."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    target = tmp_path / "out" / "m.safetensors"
    target.parent.mkdir()
    renames = []
    real_replace = os.replace

    def recording_replace(source, destination):
        renames.append((os.fspath(source), os.fspath(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", recording_replace)
    save_checkpoint(create_model("ema-tiny"), target)
    ((temporary, destination),) = renames
    assert os.path.dirname(temporary) == str(target.parent) and destination == str(target)
    assert os.path.basename(temporary).startswith(".m.partial-")
    assert os.listdir(target.parent) == ["m.safetensors"] and os.listdir(elsewhere) == []
    # an ordinary file (mkstemp's 0600 widened), whatever the umask
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644


def test_a_failed_write_leaves_no_file_behind(tmp_path, monkeypatch):
    def full_disk(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        save_checkpoint(create_model("ema-tiny"), tmp_path / "m.safetensors")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "error, reason",
    [
        (RuntimeError("PytorchStreamReader failed reading zip archive\nmore detail"), "Pytorch"),
        (EOFError(""), "EOFError"),
        (RuntimeError("   "), "RuntimeError"),
    ],
)
def test_an_unreadable_published_file_names_the_first_line_of_the_reason(
    tmp_path, monkeypatch, error, reason
):
    path = tmp_path / "broken.pkl"
    path.write_bytes(b"PK\x03\x04")

    def failing_load(*args, **kwargs):
        raise error

    monkeypatch.setattr(checkpoints.torch, "load", failing_load)
    expected = "PytorchStreamReader failed reading zip archive" if reason == "Pytorch" else reason
    with pytest.raises(EmavfiError) as info:
        load_model(path)
    assert str(info.value) == f"{path}: not a PyTorch checkpoint ({expected})"


@pytest.mark.parametrize("deform_fusion", [False, True])
def test_deformable_fusion_is_inferred_from_its_weights(deform_fusion):
    state = convert_published(create_model("ema-tiny", deform_fusion=deform_fusion).state_dict())
    assert infer_published_arch(state)["deform_fusion"] is deform_fusion


def test_an_existing_folder_or_a_path_with_a_slash_is_not_a_model_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ema-cpu").mkdir()  # a folder named like a model: the folder is meant
    for text in ("ema-cpu", "weights/ema-cpu"):
        with pytest.raises(EmavfiError, match=f"^{text}: unsupported checkpoint type"):
            load_model(text)


def test_the_model_is_moved_to_the_device_asked_for(tmp_path):
    path = save_checkpoint(create_model("ema-tiny"), tmp_path / "m.safetensors")
    model = load_model(path, device="meta")  # a device other than the CPU, on any machine
    assert {p.device.type for p in model.parameters()} == {"meta"} and not model.training


def _tiny_arch(**changes):
    return {**get_spec("ema-tiny").arch, **changes}


def test_arch_numbers_may_reach_four_times_the_largest_registered_and_no_further():
    # EMA-VFI's registered variants: widths 4 to 32, window 7, depths 1 to 4, five stages
    for fine in (
        _tiny_arch(width=128),
        _tiny_arch(width=1),
        _tiny_arch(window_size=28),
        _tiny_arch(depths=[16, 16, 16, 16, 16]),
        _tiny_arch(flow_init="dis", deform_fusion=True),
    ):
        assert check_arch("ema-tiny", fine) is fine
    for key, value, shown in (
        ("width", 129, "width=129"),
        ("width", 0, "width=0"),
        ("width", 64.0, "width=64.0"),
        ("width", True, "width=true"),
        ("width", float("inf"), "width=Infinity"),
        ("window_size", 29, "window_size=29"),
        ("depths", [16, 16, 16, 16, 17], "depths[4]=17"),
        ("depths", [2, 2, 2, 2], "depths=[2, 2, 2, 2]"),
        ("flow_init", "DIS", "flow_init='DIS'"),
        ("deform_fusion", 1, "deform_fusion=1"),
    ):
        with pytest.raises(EmavfiError) as info:
            check_arch("ema-tiny", _tiny_arch(**{key: value}))
        assert str(info.value) == f"arch value {shown} is outside what the registry allows"


def test_arch_must_name_exactly_the_spec_arguments():
    with pytest.raises(EmavfiError, match=r"^arch must be a mapping of arguments, got list$"):
        check_arch("ema-tiny", [4, 7])
    arch = _tiny_arch(extra=1)
    del arch["width"]
    with pytest.raises(
        EmavfiError,
        match=r"^arch does not fit model 'ema-tiny': missing \['width'\], unknown \['extra'\]$",
    ):
        check_arch("ema-tiny", arch)


class _NotATensor:
    """Any object of a class of ours: ``torch.load(weights_only=True)`` refuses it."""


def test_a_torch_archive_with_objects_is_refused_as_unsafe_not_as_garbage(tmp_path):
    archive = tmp_path / "objects.pth"
    torch.save({"weight": torch.zeros(1), "extra": _NotATensor()}, archive)
    assert archive.read_bytes()[:2] == b"PK"  # torch.save writes a zip archive
    with pytest.raises(EmavfiError, match=r"objects.pth: cannot be loaded safely"):
        load_model(archive)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"PX" + bytes(30))
    with pytest.raises(EmavfiError, match=r"garbage.pth: not a PyTorch checkpoint"):
        load_model(garbage)


def test_a_learned_model_without_weights_or_release_asks_for_a_checkpoint():
    with pytest.raises(EmavfiError) as info:
        load_model("ema-tiny")
    assert str(info.value) == (
        "model 'ema-tiny' has no packaged weights: pass a .safetensors checkpoint of it instead"
    )


@pytest.mark.parametrize("first", [None, torch.zeros(8, 3)])
def test_published_arch_needs_the_4d_first_convolution(first):
    state = {"feature_bone.block2.conv.0.weight": torch.zeros(8, 8, 3, 3)}
    if first is not None:
        state["feature_bone.block1.conv.0.weight"] = first
    with pytest.raises(EmavfiError) as info:
        infer_published_arch(state)
    assert str(info.value) == "not an EMA-VFI checkpoint (no feature_bone.block1 weights)"


@pytest.mark.parametrize("length", [38, 39, 40])
def test_values_in_messages_are_cut_after_40_characters(length):
    value = "x" * (length - 2)  # shown with its quotes: exactly `length` characters
    with pytest.raises(EmavfiError) as info:
        check_arch("ema-tiny", _tiny_arch(flow_init=value))
    assert str(info.value) == f"arch value flow_init='{value}' is outside what the registry allows"
    long = "x" * (length - 1)  # one more character: cut to 37 and "..."
    with pytest.raises(EmavfiError) as info:
        check_arch("ema-tiny", _tiny_arch(flow_init=long))
    shown = f"'{long}'" if length + 1 <= 40 else f"'{long}'"[:37] + "..."
    assert str(info.value) == f"arch value flow_init={shown} is outside what the registry allows"


def test_arch_mismatch_says_none_for_the_side_that_fits():
    with pytest.raises(EmavfiError, match=r": missing none, unknown \['extra'\]$"):
        check_arch("ema-tiny", _tiny_arch(extra=1))
    arch = _tiny_arch()
    del arch["width"]
    with pytest.raises(EmavfiError, match=r": missing \['width'\], unknown none$"):
        check_arch("ema-tiny", arch)


def test_convert_published_drops_every_entry_that_is_not_a_tensor():
    """Training scripts save counters and notes beside the weights, before or after them."""
    tensor = torch.zeros(1)
    state = {"epoch": 3, "module.a.weight": tensor, "note": "best", "b.bias": tensor, "lr": 0.1}
    assert convert_published(state) == {"a.weight": tensor, "b.bias": tensor}


def test_a_published_file_never_claims_the_packaged_weights(monkeypatch):
    """Were ema-small packaged one day, a model read from a user's .pkl must not carry the
    packaged file's name and hash: it holds other weights."""
    packaged = dataclasses.replace(
        get_spec("ema-small"), weights="ema_small.safetensors", sha256="0" * 64
    )
    monkeypatch.setitem(registry._REGISTRY, "ema-small", packaged)
    model = load_model(FIXTURES / "tiny_F8.pkl")  # F=8: nearest published size, ema-small
    assert model.spec.name == "ema-small-like"
    assert model.spec.weights is None and model.spec.sha256 is None


@pytest.mark.parametrize("named", [False, True])
def test_a_build_error_names_the_file_once(tmp_path, monkeypatch, named):
    path = tmp_path / "m.safetensors"

    def refusing_builder(name, **arch):
        raise EmavfiError(f"{path}: width too odd" if named else "width too odd")

    monkeypatch.setattr(checkpoints, "create_model", refusing_builder)
    with pytest.raises(EmavfiError) as info:
        checkpoints._build_checked("ema-tiny", get_spec("ema-tiny").arch, {}, path)
    assert str(info.value) == f"{path}: width too odd"
