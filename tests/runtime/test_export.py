"""ONNX export: the N x 7 x H x W convention, dynamic sizes, PyTorch parity, the CLI."""

import onnx
import onnxruntime
import pytest
import torch

from emavfi.cli.main import main
from emavfi.errors import EmavfiError
from emavfi.models.checkpoints import load_model, save_checkpoint
from emavfi.models.registry import create_model
from emavfi.runtime.export import export_onnx
from tests.shared_paths import FIXTURES

SMALL_RIFE = [16, 16, 8, 8, 8]


def _model(name: str):
    """A small model: RIFE with small random widths, the published EMA-VFI at F=8 (its flow
    heads scaled so that flows are several pixels: the timestep matters), ema-tiny with DIS."""
    torch.manual_seed(0)
    if name == "ema-f8":
        return load_model(FIXTURES / "tiny_F8.pkl").eval()
    if name == "rife":
        return create_model("rife-4.25", widths=SMALL_RIFE).eval()
    if name == "ema-dis":
        return create_model("ema-tiny", flow_init="dis").eval()
    return create_model(name).eval()


def _inputs(model, batch, height, width, times, seed):
    """Frames (N, 7, H, W) with a different timestep plane per item, and a DIS flow if needed."""
    generator = torch.Generator().manual_seed(seed)
    frames = torch.rand(batch, 7, height, width, generator=generator)
    frames[:, 6] = torch.tensor(times)[:, None, None]
    flow_init = torch.randn(batch, 5, height, width, generator=generator) * 3
    return frames, flow_init


def _torch_output(model, frames, flow_init):
    img0, img1, t = frames[:, :3], frames[:, 3:6], frames[:, 6, 0, 0]
    with torch.no_grad():
        if getattr(model, "flow_init", "none") != "dis":
            return model(img0, img1, t)
        features = model.encode(img0, img1)
        initial = (flow_init[:, :4], flow_init[:, 4:5])
        return model.decode(img0, img1, t, features, initial=initial)


def _session(model, tmp_path):
    path = export_onnx(model, tmp_path / "m.onnx")
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _feeds(frames, flow_init, session):
    feeds = {"input": frames.numpy(), "flow_init": flow_init.numpy()}
    return {i.name: feeds[i.name] for i in session.get_inputs()}


@pytest.mark.parametrize("name", ["ema-f8", "ema-dis", "rife"])
def test_graph_matches_pytorch_at_sizes_it_was_not_traced_at(name, tmp_path):
    model = _model(name)
    session = _session(model, tmp_path)
    names = [i.name for i in session.get_inputs()]
    assert names == (["input", "flow_init"] if name == "ema-dis" else ["input"])
    multiple = model.spec.pad_multiple
    # batch 1 and 3, sizes whose attention windows need other paddings than the traced one
    sizes = [
        (1, 3 * multiple, 5 * multiple, [0.3]),
        (3, 4 * multiple, 7 * multiple, [0.5, 0.2, 0.9]),
    ]
    for batch, height, width, times in sizes:
        frames, flow_init = _inputs(model, batch, height, width, times, seed=batch)
        (got,) = session.run(None, _feeds(frames, flow_init, session))
        expected = _torch_output(model, frames, flow_init)
        assert got.shape == (batch, 3, height, width)
        assert float((torch.from_numpy(got) - expected).abs().max()) < 1e-3


@pytest.mark.parametrize("name", ["ema-f8", "rife"])
def test_the_timestep_plane_is_read(name, tmp_path):
    model = _model(name)
    session = _session(model, tmp_path)
    frames, flow_init = _inputs(model, 1, 128, 192, [0.2], seed=5)
    (early,) = session.run(None, _feeds(frames, flow_init, session))
    frames[:, 6] = 0.8
    (late,) = session.run(None, _feeds(frames, flow_init, session))
    assert abs(early - late).max() > 0.05
    expected = _torch_output(model, frames, flow_init)
    assert float((torch.from_numpy(late) - expected).abs().max()) < 1e-3


def test_metadata_documents_the_convention(tmp_path):
    model = _model("rife")
    proto = onnx.load(str(export_onnx(model, tmp_path / "r.onnx", flow_scale=0.5)))
    meta = {entry.key: entry.value for entry in proto.metadata_props}
    assert meta["channel_order"] == "BGR" and meta["pad_multiple"] == "128"
    assert meta["flow_scale"] == "0.5" and meta["inputs"].startswith("input: N x 7 x H x W")
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 7, "height", "width"]


def test_fp16_rife_keeps_float32_warping_and_matches(tmp_path):
    model = _model("rife")
    path = export_onnx(model, tmp_path / "h.onnx", fp16=True)
    proto = onnx.load(str(path))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    grids = [node.input[1] for node in proto.graph.node if node.op_type == "GridSample"]
    assert len(grids) == 2 * 5 + 2 * 4  # frames after each block, features from the second on
    assert all(types[grid] == onnx.TensorProto.FLOAT for grid in grids)
    assert next(model.parameters()).dtype == torch.float32  # the caller's module is untouched
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    frames, _ = _inputs(model, 1, 128, 192, [0.5], seed=0)
    (got,) = session.run(None, {"input": frames.half().numpy()})
    expected = _torch_output(model, frames, None)
    assert float((torch.from_numpy(got).float() - expected).abs().max()) < 2e-2


def test_fp16_ema_is_refused_with_one_line_and_no_file(tmp_path):
    with pytest.raises(EmavfiError, match="float16"):
        export_onnx(_model("ema-tiny"), tmp_path / "e.onnx", fp16=True)
    assert not (tmp_path / "e.onnx").exists()
    assert not list(tmp_path.iterdir())  # nor a partial file


def test_a_failed_export_leaves_the_earlier_file_as_it_was(tmp_path):
    earlier = tmp_path / "e.onnx"
    earlier.write_bytes(b"an earlier export")
    with pytest.raises(EmavfiError, match="float16"):
        export_onnx(_model("ema-tiny"), earlier, fp16=True)
    assert earlier.read_bytes() == b"an earlier export"
    assert [p.name for p in tmp_path.iterdir()] == ["e.onnx"]


def test_cli_exports_a_checkpoint_and_checks_it(tmp_path, capsys):
    checkpoint = save_checkpoint(_model("ema-tiny"), tmp_path / "tiny.safetensors")
    out = tmp_path / "tiny.onnx"
    assert main(["export", str(checkpoint), "-o", str(out)]) == 0
    assert out.is_file()
    assert "matches PyTorch in onnxruntime" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["no-such-model", "-o", "m.onnx"], "unknown model"),
        (["classical", "-o", "m.onnx"], "only learned models"),
        (["ema-cpu", "-o", "m.txt"], "must end in .onnx"),
        (["ema-cpu", "-o", "m.onnx", "--opset", "12"], "--opset must be 16"),
        (["ema-cpu", "-o", "m.onnx", "--scale", "0.5"], "DIS-initialised"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not list(tmp_path.glob("*.onnx"))
