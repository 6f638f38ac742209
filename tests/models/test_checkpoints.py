"""Checkpoints: our format round-trips, published layouts load, bad files fail in one line."""

import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from emavfi.cli.main import main
from emavfi.errors import EmavfiError
from emavfi.models import checkpoints, registry
from emavfi.models.checkpoints import (
    convert_published,
    infer_published_arch,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from emavfi.models.registry import ModelSpec, create_model, get_spec
from tests.shared_paths import FIXTURES


def _published_state(keys_file: str) -> tuple[dict, dict]:
    """A random state dict with exactly the published names and shapes, and the JSON."""
    listing = json.loads((FIXTURES / keys_file).read_text())
    state = {name: torch.empty(shape) for name, shape in listing["state_dict"].items()}
    return state, listing


def test_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    model = create_model("ema-tiny")
    path = save_checkpoint(model, tmp_path / "m.safetensors", training={"steps": 3, "psnr": 30.5})
    assert os.listdir(tmp_path) == ["m.safetensors"]  # no temporary file left behind
    loaded = load_model(path)
    assert loaded.spec.name == "ema-tiny" and loaded.spec.arch == model.spec.arch
    assert loaded.spec.channel_order == "RGB" and not loaded.training
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    _, metadata = load_checkpoint(path)
    assert metadata["training"] == {"steps": 3, "psnr": 30.5} and metadata["spec"] == "ema-tiny"


def test_save_unwraps_and_keeps_overrides(tmp_path):
    model = create_model("ema-tiny", deform_fusion=True)
    path = save_checkpoint(torch.nn.DataParallel(model), tmp_path / "w.safetensors")
    state, metadata = load_checkpoint(path)
    assert not any(k.startswith("module.") for k in state)
    assert metadata["arch"]["deform_fusion"] is True
    assert load_model(path).fusion is not None


class _Compiled(torch.nn.Module):
    """What torch.compile returns (an OptimizedModule holding ``_orig_mod``), without the
    seconds that importing the compiler takes."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self._orig_mod = module


def test_save_unwraps_compiled_and_parallel_models(tmp_path):
    torch.manual_seed(0)
    model = create_model("ema-tiny")
    wrapped = _Compiled(torch.nn.DataParallel(model))
    assert all(k.startswith("_orig_mod.module.") for k in wrapped.state_dict())
    state, _ = load_checkpoint(save_checkpoint(wrapped, tmp_path / "c.safetensors"))
    assert state.keys() == model.state_dict().keys()


def test_save_needs_a_registered_model(tmp_path):
    with pytest.raises(ValueError, match=r"needs a model built by create_model \(model.spec\)"):
        save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "linear.safetensors")
    assert not list(tmp_path.iterdir())


def test_convert_published_strips_wrappers_and_buffers():
    tensor = torch.zeros(1)
    state = {
        "module.a.weight": tensor,
        "_orig_mod.module.b.bias": tensor,
        "module.feature_bone.block4.1.attn_mask": tensor,
        "module.feature_bone.block4.1.HW": tensor,
        "c": tensor,
    }
    assert sorted(convert_published(state)) == ["a.weight", "b.bias", "c"]


@pytest.mark.parametrize(
    "name, keys_file", [("ema-small", "ours_small_keys.json"), ("ema-base", "ours_keys.json")]
)
def test_published_layouts_load_strictly(name, keys_file):
    state, listing = _published_state(keys_file)
    converted = convert_published(state)
    assert infer_published_arch(converted) == get_spec(name).arch
    model = create_model(name)
    model.load_state_dict(converted, strict=True)
    assert sum(p.numel() for p in model.parameters()) == listing["num_params"]


def test_published_pkl_loads_by_path_as_bgr(tmp_path):
    state, _ = _published_state("ours_small_keys.json")
    torch.save({k: torch.randn(v.shape) * 0.01 for k, v in state.items()}, tmp_path / "s.pkl")
    model = load_model(tmp_path / "s.pkl")
    assert model.spec.name == "ema-small" and model.spec.channel_order == "BGR"
    assert model.spec.pad_multiple == 32


def test_tiny_published_file_loads():
    model = load_model(FIXTURES / "tiny_F8.pkl")
    assert model.spec.arch["width"] == 8 and model.spec.channel_order == "BGR"


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch EXPLOITED",))


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    tiny = create_model("ema-tiny").state_dict()
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other_net.pkl")
    torch.save({"a": 1, "b": "text"}, tmp_path / "no_tensors.pkl")
    incomplete = {f"module.{k}": v for k, v in list(tiny.items())[:-3]}
    torch.save(incomplete, tmp_path / "incomplete.pkl")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "bare.safetensors"))
    return {
        "missing": (tmp_path / "nope.pkl", "not found"),
        "directory": (tmp_path, "unsupported"),
        "garbage pkl": (_write_bytes(tmp_path / "g.pkl", b"not a pickle at all"), "not a"),
        "code pkl": (_write_bytes(tmp_path / "x.pkl", pickle.dumps(_Exploit())), "safely"),
        "other network": (tmp_path / "other_net.pkl", "not an EMA-VFI"),
        "no tensors": (tmp_path / "no_tensors.pkl", "no tensors"),
        "incomplete": (tmp_path / "incomplete.pkl", "do not match model"),
        "corrupt safetensors": (_write_bytes(tmp_path / "c.safetensors", b"\x00" * 40), "not a"),
        "no metadata": (tmp_path / "bare.safetensors", "without emavfi metadata"),
        "bad extension": (_write_bytes(tmp_path / "w.onnx", b"x"), "unsupported"),
    }


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_bad_files_raise_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for case, (path, phrase) in _bad_files(tmp_path).items():
        with pytest.raises(EmavfiError) as info:
            load_model(path)
        message = str(info.value)
        assert phrase in message and "\n" not in message, (case, message)
    assert not (tmp_path / "EXPLOITED").exists()


def test_mismatched_safetensors_names_the_model(tmp_path):
    model = create_model("ema-tiny")
    path = save_checkpoint(model, tmp_path / "t.safetensors")
    state, metadata = load_checkpoint(path)
    state.pop(next(iter(state)))
    meta = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in metadata.items()}
    save_file(state, str(path), metadata=meta)
    with pytest.raises(EmavfiError, match="'ema-tiny'.*missing 1"):
        load_model(path)


def test_unknown_name_and_weightless_specs():
    with pytest.raises(EmavfiError, match="did you mean 'ema-tiny'"):
        load_model("ema-tiy")
    with pytest.raises(EmavfiError, match="no packaged weights"):
        load_model("ema-small")


def _packaged_spec(monkeypatch, tmp_path, sha256=None):
    spec = ModelSpec(
        name="ema-pack",
        builder=get_spec("ema-tiny").builder,
        arch=get_spec("ema-tiny").arch,
        weights="pack.safetensors",
        sha256=sha256,
    )
    monkeypatch.setitem(registry._REGISTRY, "ema-pack", spec)
    monkeypatch.setattr(checkpoints.resources, "files", {"emavfi": tmp_path}.__getitem__)
    (tmp_path / "weights").mkdir(exist_ok=True)
    return tmp_path / "weights" / "pack.safetensors"


def test_packaged_weights_missing(monkeypatch, tmp_path):
    _packaged_spec(monkeypatch, tmp_path)
    with pytest.raises(EmavfiError, match="missing from the installation"):
        load_model("ema-pack")


def test_packaged_weights_sha256_is_checked(monkeypatch, tmp_path):
    target = _packaged_spec(monkeypatch, tmp_path, sha256="0" * 64)
    save_checkpoint(create_model("ema-pack"), target)
    with pytest.raises(EmavfiError, match="sha256"):
        load_model("ema-pack")
    _packaged_spec(monkeypatch, tmp_path, sha256=checkpoints._sha256(target))
    assert load_model("ema-pack").spec.name == "ema-pack"


def _with_arch(tmp_path: Path, arch, name: str = "hostile.safetensors") -> Path:
    """An ema-tiny checkpoint whose metadata claims ``arch`` (any JSON)."""
    path = save_checkpoint(create_model("ema-tiny"), tmp_path / name)
    state, metadata = load_checkpoint(path)
    meta = {**{k: v for k, v in metadata.items() if isinstance(v, str)}, "arch": json.dumps(arch)}
    meta["training"] = "{}"
    save_file(state, str(path), metadata=meta)
    return path


@pytest.mark.parametrize(
    "change",
    [
        {"flow_init": "evil"},
        {"width": 100000},
        {"depths": [1, 1, 1, 2, 10000000]},
        {"width": "4"},
        {"depths": [1, 1]},
        {"window_size": -7},
        {"width": 4.5},
        {"extra": 1},
    ],
)
def test_hostile_arch_is_refused_before_anything_is_built(change, tmp_path, monkeypatch, capsys):
    arch = {**get_spec("ema-tiny").arch, **change}
    path = _with_arch(tmp_path, arch)
    built = []
    monkeypatch.setattr(checkpoints, "create_model", lambda *a, **k: built.append(k))
    with pytest.raises(EmavfiError) as info:
        load_model(path)
    assert not built and "\n" not in str(info.value)
    from tests.images import huge_png

    frame = huge_png(tmp_path / "f.png", 8, 8)
    assert (
        main(["pair", str(frame), str(frame), "-o", str(tmp_path / "o"), "--model", str(path)]) == 2
    )
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**9), 10**9) | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.fixed_dictionaries({k: json_values for k in get_spec("ema-tiny").arch}))
def test_any_arch_metadata_is_refused_in_one_line_or_within_bounds(values, monkeypatch, tmp_path):
    checked = []

    def meta_build(name, **arch):  # what a real build would get: record, then refuse
        checked.append(arch)
        raise EmavfiError("stop here")

    monkeypatch.setattr(checkpoints, "create_model", meta_build)
    try:
        checkpoints._build_checked("ema-tiny", values, {}, tmp_path / "x.safetensors")
    except EmavfiError as exc:
        assert "\n" not in str(exc)
    for arch in checked:  # only ever bounded values reach a build
        assert 1 <= arch["width"] <= 4 * 32 and 1 <= arch["window_size"] <= 4 * 7
        assert len(arch["depths"]) == 5 and all(1 <= d <= 4 * 4 for d in arch["depths"])
        assert arch["flow_init"] in ("none", "dis") and isinstance(arch["deform_fusion"], bool)


def test_unsafe_pickle_says_how_to_convert_without_warnings(tmp_path):
    import warnings

    with open(tmp_path / "plain.pkl", "wb") as handle:  # pickle.dump, not torch.save
        pickle.dump({"weight": torch.zeros(2)}, handle)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(EmavfiError) as info:
        warnings.simplefilter("always")
        load_model(tmp_path / "plain.pkl")
    assert not caught
    message = str(info.value)
    assert "torch.save(model.state_dict()" in message and "weights_only=False" not in message


@pytest.mark.parametrize(
    "name, arch, phrase, built",
    [
        # within the registry's bounds: the meta-device build finds that the tensors differ
        ("ema-tiny", {**get_spec("ema-tiny").arch, "width": 64}, "wrong shape", ["meta"]),
        # and the builder's own checks run there too (RIFE widths are even)
        (
            "rife-4.25",
            {"widths": [7] * 5},
            r"arch \{\"widths\": \[7, 7, 7, 7, 7\]\} does not build model 'rife-4.25'",
            ["meta"],
        ),
        # beyond them: refused before even a meta-device build
        ("ema-tiny", {**get_spec("ema-tiny").arch, "width": 4096}, "registry allows", []),
        ("rife-4.25", {"widths": [100_000] * 5}, "registry allows", []),
        ("rife-4.25", {"widths": 5}, "registry allows", []),
    ],
)
def test_hostile_metadata_is_checked_before_building(
    tmp_path, monkeypatch, name, arch, phrase, built
):
    """A small file whose metadata announces another network: refused, nothing real built."""
    path = save_checkpoint(create_model("ema-tiny"), tmp_path / "h.safetensors")
    state, metadata = load_checkpoint(path)
    meta = {**metadata, "spec": name, "arch": json.dumps(arch), "training": "{}"}
    save_file(state, str(path), metadata=meta)
    built_on = []
    real_create = checkpoints.create_model
    monkeypatch.setattr(
        checkpoints,
        "create_model",
        lambda *a, **k: built_on.append(torch.empty(0).device.type) or real_create(*a, **k),
    )
    with pytest.raises(EmavfiError, match=phrase) as info:
        load_model(path)
    assert "\n" not in str(info.value) and built_on == built


def test_packaged_weights_must_hold_their_model(monkeypatch, tmp_path):
    target = _packaged_spec(monkeypatch, tmp_path)
    save_checkpoint(create_model("ema-tiny"), target)  # another model's weights under its name
    with pytest.raises(EmavfiError, match="holds model 'ema-tiny', expected 'ema-pack'"):
        load_model("ema-pack")


def test_sha256_of_a_file_larger_than_one_read(tmp_path):
    data = os.urandom((5 << 19) + 7)  # 2.5 MiB: three reads of 1 MiB
    (tmp_path / "blob").write_bytes(data)
    assert checkpoints._sha256(tmp_path / "blob") == hashlib.sha256(data).hexdigest()


def test_engines_load_by_name_without_weights():
    blend = load_model("blend")
    assert blend.spec.name == "blend" and not blend.spec.learned
    img0, img1 = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    assert torch.allclose(blend(img0, img1, torch.tensor([0.25])), torch.full_like(img0, 0.25))


def _resave(path: Path, state: dict, **metadata_changes) -> Path:
    """Write ``state`` with the metadata that save_checkpoint gives ema-tiny, changed (a None
    value drops the key)."""
    _, metadata = load_checkpoint(save_checkpoint(create_model("ema-tiny"), path))
    meta = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in metadata.items()}
    meta.update(metadata_changes)
    save_file(state, str(path), metadata={k: v for k, v in meta.items() if v is not None})
    return path


def test_state_mismatch_names_every_problem(tmp_path):
    path = save_checkpoint(create_model("ema-tiny"), tmp_path / "m.safetensors")
    state, _ = load_checkpoint(path)
    first, second = sorted(state)[:2]
    del state[first]
    state[second] = torch.zeros(3)
    state["extra.weight"] = torch.zeros(1)
    _resave(path, state)
    message = f"{path}: weights do not match model 'ema-tiny': missing 1 (e.g. {first}); "
    message += f"unexpected 1 (e.g. extra.weight); wrong shape 1 (e.g. {second})"
    with pytest.raises(EmavfiError) as info:
        load_model(path)
    assert str(info.value) == message
    state, _ = load_checkpoint(save_checkpoint(create_model("ema-tiny"), path))
    for key, value in (("extra.weight", torch.zeros(1)), (second, torch.zeros(3))):
        _resave(path, {**state, key: value})  # one problem alone is enough
        with pytest.raises(EmavfiError, match=f"(unexpected|wrong shape) 1 \\(e.g. {key}\\)$"):
            load_model(path)


def test_channel_order_and_metadata_come_from_the_file(tmp_path):
    path = save_checkpoint(create_model("ema-tiny"), tmp_path / "m.safetensors")
    state, _ = load_checkpoint(path)
    model = load_model(_resave(path, state, channel_order="BGR", training=None))
    assert model.spec.channel_order == "BGR" and model.spec.name == "ema-tiny"
    assert model.checkpoint_metadata["training"] == {}  # absent: empty
    assert load_model(_resave(path, state, channel_order=None)).spec.channel_order == "RGB"
    with pytest.raises(EmavfiError, match=f"{path}: bad channel_order 'bgr' in metadata"):
        load_model(_resave(path, state, channel_order="bgr"))
    for spec in ("ema-huge", "blend"):  # an engine is registered, but holds no weights
        with pytest.raises(EmavfiError, match=f"{path}: unknown model '{spec}' in checkpoint"):
            load_model(_resave(path, state, spec=spec))
    with pytest.raises(EmavfiError, match="without emavfi metadata"):
        load_model(_resave(path, state, spec=None))
    with pytest.raises(EmavfiError, match=f"{path}: corrupt emavfi metadata"):
        load_model(_resave(path, state, arch="{width"))


def test_published_file_in_a_state_dict_wrapper_and_near_architectures(tmp_path):
    wrapped = tmp_path / "wrapped.pkl"
    raw = torch.load(FIXTURES / "tiny_F8.pkl", map_location="cpu", weights_only=True)
    torch.save({"state_dict": raw, "epoch": 3}, wrapped)
    model = load_model(wrapped)
    assert model.spec.name == "ema-small-like"  # F=8 is no published size: the nearest, F=16
    assert model.spec.weights is None and model.spec.sha256 is None
    assert checkpoints._closest_published({"width": 30}) == "ema-base"
    assert checkpoints._closest_published({"width": 12}) == "ema-small"
