"""`emavfi pair`: outputs, timesteps and every bad-input case of the foundation issue."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from emavfi.cli.main import main
from emavfi.imageio import read_image
from emavfi.interpolator import Interpolator
from emavfi.models.checkpoints import save_checkpoint
from emavfi.models.registry import create_model


def _write(path, image):
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(0)
    a = (rng.random((40, 56, 3)) * 255).astype(np.uint8)
    b = np.roll(a, 3, axis=1)
    return _write(tmp_path / "a.png", a), _write(tmp_path / "b.png", b)


def test_writes_one_png_per_timestep(pair, tmp_path):
    out = tmp_path / "out"
    assert (
        main(
            [
                "pair",
                str(pair[0]),
                str(pair[1]),
                "-o",
                str(out),
                "--times",
                "0.25,0.5,0.75",
                "--model",
                "blend",
            ]
        )
        == 0
    )
    files = sorted(out.glob("*.png"))
    assert len(files) == 3
    a = cv2.imread(str(pair[0])).astype(float)
    b = cv2.imread(str(pair[1])).astype(float)
    first = cv2.imread(str(files[0])).astype(float)
    assert np.abs(first - (0.75 * a + 0.25 * b)).max() <= 1


def test_num_gives_evenly_spaced_frames(pair, tmp_path):
    out = tmp_path / "o"
    assert (
        main(
            [
                "pair",
                str(pair[0]),
                str(pair[1]),
                "-o",
                str(out),
                "--num",
                "3",
                "--model",
                "classical",
            ]
        )
        == 0
    )
    assert [p.name for p in sorted(out.glob("*.png"))] == [
        "frame_001_t0.2500.png",
        "frame_002_t0.5000.png",
        "frame_003_t0.7500.png",
    ]


def test_grayscale_and_rgba_are_converted(tmp_path):
    gray = _write(tmp_path / "g.png", np.full((16, 16), 100, np.uint8))
    rgba = _write(tmp_path / "r.png", np.full((16, 16, 4), 200, np.uint8))
    assert main(["pair", str(gray), str(rgba), "-o", str(tmp_path / "o"), "--model", "blend"]) == 0
    assert cv2.imread(str(tmp_path / "o" / "frame_001_t0.5000.png")).shape == (16, 16, 3)


def _fails(capsys, argv, text):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_inputs(pair, tmp_path, capsys):
    a, b = map(str, pair)
    out = str(tmp_path / "o")
    _fails(
        capsys,
        ["pair", a, str(tmp_path / "missing.png"), "-o", out, "--model", "blend"],
        "not found",
    )
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    _fails(capsys, ["pair", a, str(junk), "-o", out, "--model", "blend"], "cannot decode")
    small = _write(tmp_path / "small.png", np.zeros((8, 8, 3), np.uint8))
    _fails(capsys, ["pair", a, str(small), "-o", out, "--model", "blend"], "differ in size")
    _fails(
        capsys,
        ["pair", a, b, "-o", out, "--times", "0.5,1.2", "--model", "blend"],
        "outside (0, 1)",
    )
    _fails(capsys, ["pair", a, b, "-o", str(pair[0]), "--model", "blend"], "not a folder")
    _fails(capsys, ["pair", a, b, "-o", out, "--model", "nope"], "unknown model")
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.png"))


def test_fast_runs_the_network_at_half_size(pair, tmp_path, monkeypatch):
    from emavfi import interpolator as interpolator_module

    seen = {}
    original = interpolator_module.Interpolator.__init__

    def spy(self, *args, **kwargs):
        seen.update(kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(interpolator_module.Interpolator, "__init__", spy)
    out = tmp_path / "fast"
    assert main(["pair", str(pair[0]), str(pair[1]), "-o", str(out), "--fast"]) == 0
    assert seen["scale"] == 0.5 and seen["refine_at_scale"] is True
    frame = cv2.imread(str(next(out.glob("*.png"))))
    assert frame.shape == (40, 56, 3)


def test_oversized_header_is_one_line(pair, tmp_path, capsys):
    from tests.images import huge_png

    big = huge_png(tmp_path / "big.png", 100000, 100000)
    _fails(
        capsys,
        ["pair", str(pair[0]), str(big), "-o", str(tmp_path / "o"), "--model", "blend"],
        "pixels",
    )
    assert not (tmp_path / "o").exists()


def test_bad_model_creates_no_folder(pair, tmp_path, capsys):
    out = tmp_path / "new" / "deeper"
    _fails(
        capsys,
        ["pair", str(pair[0]), str(pair[1]), "-o", str(out), "--model", "nope"],
        "unknown model",
    )
    assert not (tmp_path / "new").exists()


def test_existing_frames_need_y(pair, tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["pair", str(pair[0]), str(pair[1]), "-o", str(out), "--model", "blend"]
    assert main(argv) == 0
    written = out / "frame_001_t0.5000.png"
    written.write_bytes(b"mine")
    _fails(capsys, argv, "-y overwrites")
    _fails(capsys, [*argv, "-n"], "not overwritten")
    assert written.read_bytes() == b"mine"
    assert main([*argv, "-y"]) == 0 and cv2.imread(str(written)).shape == (40, 56, 3)


def test_sixteen_bit_images_are_scaled_to_eight_bit(tmp_path):
    rng = np.random.default_rng(1)
    base = [rng.integers(0, 255, (12, 20, 3), dtype=np.uint16) for _ in range(2)]
    offsets = [rng.choice([0, 100, 200], size=(12, 20, 3)).astype(np.uint16) for _ in range(2)]
    paths = [
        _write(tmp_path / f"w{i}.png", v * 257 + o) for i, (v, o) in enumerate(zip(base, offsets))
    ]
    assert cv2.imread(str(paths[0]), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    # the nearest 8-bit value of v * 257 + o: v for o < 128.5, v + 1 above
    eight = [
        cv2.cvtColor((v + (o > 128)).astype(np.uint8), cv2.COLOR_BGR2RGB)
        for v, o in zip(base, offsets)
    ]
    assert np.array_equal(read_image(paths[0]), eight[0])
    out = tmp_path / "o"
    assert main(["pair", str(paths[0]), str(paths[1]), "-o", str(out), "--model", "blend"]) == 0
    expected = Interpolator("blend", device="cpu").frames(eight[0], eight[1], [0.5])[0]
    assert np.array_equal(read_image(out / "frame_001_t0.5000.png"), expected)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained ema-tiny: like any learned model, not symmetric under flips."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_checkpoint(create_model("ema-tiny"), path)
    return path


def test_tta_option_averages_over_flips(pair, tmp_path, tiny_checkpoint):
    out = tmp_path / "tta"
    args = ["pair", str(pair[0]), str(pair[1]), "-o", str(out), "--model", str(tiny_checkpoint)]
    assert main([*args, "--device", "cpu", "--tta"]) == 0
    got = read_image(out / "frame_001_t0.5000.png")
    a, b = read_image(pair[0]), read_image(pair[1])
    frames = {
        tta: Interpolator(tiny_checkpoint, device="cpu", tta=tta).frames(a, b, [0.5])[0]
        for tta in (False, True)
    }
    assert np.array_equal(got, frames[True])
    assert np.abs(frames[True].astype(int) - frames[False]).max() > 2  # TTA changes this model


def test_missing_device_and_unwritable_output(pair, tmp_path, capsys, monkeypatch):
    a, b = map(str, pair)
    out = str(tmp_path / "o")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # whatever this machine has
    _fails(capsys, ["pair", a, b, "-o", out, "--device", "cuda"], "device 'cuda' is not available")
    _fails(capsys, ["pair", a, b, "-o", out, "--device", "tpu"], "unknown device 'tpu'")
    # no one can create files in /proc, not even root (for whom every chmod is writable)
    _fails(capsys, ["pair", a, b, "-o", "/proc/emavfi_out"], "cannot create output folder")
    _fails(capsys, ["pair", a, b, "-o", "/proc", "--model", "blend"], "cannot write to /proc")
    assert not list((tmp_path / "o").glob("*.png"))
