"""`emavfi eval` end to end: blend vs classical on tiny triplets -> table, JSON, Markdown, HTML."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from emavfi import metrics
from emavfi.cli.main import main
from emavfi.data.sources import load_frame, open_source
from emavfi.data.sources.base import FrameWindow
from emavfi.evaluate import runner
from emavfi.evaluate.runner import EvalResults, SampleResult, example_samples
from emavfi.imageio import write_image


def test_two_models_side_by_side(tmp_path: Path, triplet_root: Path, middlebury_root: Path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "eval",
            "--model",
            "blend",
            "--model",
            "classical",
            "--device",
            "cpu",
            "--dataset",
            f"triplet:{triplet_root}",
            "--dataset",
            f"middlebury:{middlebury_root}",
            "-o",
            str(out),
            "--examples",
            "1",
        ]
    )
    assert code == 0
    console = capsys.readouterr().out
    for model in ("blend", "classical"):
        assert re.search(rf"triplets\s+{model}\s+3\s", console)
        assert re.search(rf"middlebury\s+{model}\s+2\s", console)

    data = json.loads((out / "results.json").read_text())
    samples = data["samples"]
    assert len(samples) == (3 + 2) * 2
    assert {s["model"] for s in samples} == {"blend", "classical"}
    # Both models saw exactly the same samples.
    by_model = {
        m: sorted((s["dataset"], s["sample"]) for s in samples if s["model"] == m)
        for m in ("blend", "classical")
    }
    assert by_model["blend"] == by_model["classical"]
    assert all(s["lpips"] is None for s in samples)
    assert data["settings"]["metrics"]["lpips"].startswith("n/a")

    # blend's figures are those of the plain average of the inputs, computed independently here.
    window = open_source("triplet", triplet_root)[0]
    f0, f1 = (load_frame(r).astype(np.float64) for r in window.inputs)
    gt = load_frame(window.targets[0][1])
    average = np.round((f0 + f1) / 2).astype(np.uint8)
    blend = next(s for s in samples if s["model"] == "blend" and s["sample"] == window.name)
    assert blend["psnr"] == pytest.approx(metrics.psnr(average, gt), abs=0.05)
    assert blend["ssim"] == pytest.approx(metrics.ssim(average, gt), abs=1e-3)
    assert blend["sharpness"] == pytest.approx(
        metrics.sharpness_ratio(average, f0.astype(np.uint8), f1.astype(np.uint8)), rel=0.05
    )

    summary = data["summary"]["triplets"]
    blend_rows = [
        s["psnr"] for s in samples if s["model"] == "blend" and s["dataset"] == "triplets"
    ]
    assert summary["blend"]["psnr"] == pytest.approx(float(np.mean(blend_rows)))
    assert summary["blend"]["count"] == 3 and summary["blend"]["ms_per_frame"] > 0
    blend_sharpness = [
        s["sharpness"] for s in samples if (s["model"], s["dataset"]) == ("blend", "triplets")
    ]
    assert summary["blend"]["sharpness"] == pytest.approx(float(np.mean(blend_sharpness)))
    assert data["summary"]["overall"]["classical"]["count"] == 5

    markdown = (out / "results.md").read_text()
    assert markdown.startswith("| dataset | model |") and markdown.count("| classical |") == 3
    assert "| sharpness |" in markdown.splitlines()[0]

    page = (out / "report.html").read_text()
    assert page.count("<svg") >= 2 * 4  # PSNR, SSIM, IE, time per dataset
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images and all((out / src).is_file() for src in images)
    # Each model's worst sample by its own PSNR is shown, under a heading that names the model.
    for dataset in ("triplets", "middlebury"):
        for model in ("blend", "classical"):
            rows = [s for s in samples if (s["dataset"], s["model"]) == (dataset, model)]
            worst = min(rows, key=lambda s: s["psnr"])["sample"]
            assert re.search(rf"<h3>worst for [^<]*{model} #1[^<]*: {re.escape(worst)}</h3>", page)
    # Every shown sample: inputs and truth (whole and cropped), then per model the truth, its
    # frame and its error heat map cropped, and its frame and heat map whole.
    sections = page.split("<h3>")[1:]
    assert len(sections) >= 2 * 2 and any(s.startswith("best") for s in sections)
    for section in sections:
        assert section.count("<img") == 6 + 5 * 2
        for model in ("blend", "classical"):
            assert section.count(f"<figcaption>{model} error") == 2
            assert section.count(f"<figcaption>{model}: ") == 2  # its frame, with its figures
        assert "sharpness" in section


def test_report_shows_the_lowest_psnr_as_worst_and_the_highest_as_best(
    tmp_path: Path, triplet_root: Path
):
    out = tmp_path / "out"
    args = ["eval", "--model", "blend", "--device", "cpu", "--dataset", f"triplet:{triplet_root}"]
    assert main([*args, "-o", str(out), "--examples", "1"]) == 0
    psnr = {
        s["sample"]: s["psnr"] for s in json.loads((out / "results.json").read_text())["samples"]
    }
    assert len(set(psnr.values())) == 3  # three different scores: the order is well defined
    page = (out / "report.html").read_text()
    shown = dict(re.findall(r"<h3>(worst for blend #1|best on average): ([^<]+)</h3>", page))
    assert shown == {
        "worst for blend #1": min(psnr, key=psnr.get),
        "best on average": max(psnr, key=psnr.get),
    }


def test_example_samples_are_each_models_worst_then_the_best_on_average():
    # m1's worst: b (24) then a (30); m2's worst: c (10) then a (20); best mean: d (90), then e
    # (inf and 70: infinity counts as 100, so its mean is 85, not infinite)
    scores = {
        "a": (30.0, 20.0),
        "b": (24.0, 24.0),
        "c": (math.inf, 10.0),
        "d": (90.0, 90.0),
        "e": (math.inf, 70.0),
    }
    results = EvalResults(
        models=["m1", "m2"],
        suites=[],
        samples=[
            SampleResult("set", sample, model, 0.5, value, 0.9, 1.0, None, 1.0, 1.0)
            for sample, pair in scores.items()
            for model, value in zip(("m1", "m2"), pair)
        ],
    )
    assert example_samples(results, "set", 1) == [
        ("worst for m1 #1", "b"),
        ("worst for m2 #1", "c"),
        ("best on average", "d"),
    ]
    shown = example_samples(results, "set", 2)  # a is among both models' worst: shown once
    assert shown[:3] == [
        ("worst for m1 #1", "b"),
        ("worst for m1 #2, m2 #2", "a"),
        ("worst for m2 #1", "c"),
    ]
    assert shown[3:] == [("best on average", "d"), ("best on average", "e")]  # none twice
    assert example_samples(results, "other", 2) == []
    assert example_samples(results, "set", 0) == []


def test_identical_prediction_writes_inf_psnr_as_text(tmp_path: Path, triplet_root: Path):
    # A static scene: blend reproduces the ground truth exactly, PSNR is infinite.
    for item in triplet_root.iterdir():
        frame = (item / "frame_00.png").read_bytes()
        for name in ("frame_01_gt.png", "frame_02.png"):
            (item / name).write_bytes(frame)
    out = tmp_path / "out"
    assert (
        main(
            [
                "eval",
                "--model",
                "blend",
                "--device",
                "cpu",
                "--dataset",
                f"triplet:{triplet_root}",
                "-o",
                str(out),
                "--no-html",
            ]
        )
        == 0
    )
    data = json.loads((out / "results.json").read_text())
    assert {s["psnr"] for s in data["samples"]} == {"inf"}
    assert data["samples"][0]["ssim"] == pytest.approx(1.0) and data["samples"][0]["ie"] == 0.0
    assert not (out / "report.html").exists()
    assert "| inf |" in (out / "results.md").read_text()
    assert not math.isnan(data["summary"]["triplets"]["blend"]["ssim"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "triplet:/no/such/folder"], "triplet dataset not found"),
        (["--dataset", "flow:/tmp"], "unknown dataset kind 'flow'"),
        (["--dataset", "ucf101"], "needs --data-root"),
        (["--dataset", "TRIPLETS", "--model", "no_such_model"], "unknown model"),
        (["--dataset", "TRIPLETS", "--model", "missing/weights.safetensors"], "not found"),
        (
            ["--dataset", "TRIPLETS", "--lpips-weights", "/no/lpips.pth"],
            "LPIPS weights file not found",
        ),
        ([], "no dataset"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args, message, triplet_root: Path, tmp_path: Path, capsys
):
    args = [a.replace("TRIPLETS", f"triplet:{triplet_root}") for a in args]
    out = tmp_path / "out"
    assert main(["eval", "--device", "cpu", "-o", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_eval_py_seed_defaults(tmp_path: Path, scenes_root: Path, monkeypatch, capsys):
    """`python eval.py`: val_data_dir from config/train_config.yaml; default model if no best model."""
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--seed-defaults", "--device", "cpu"]) == 2
    assert "validation folder data/processed/val not found" in capsys.readouterr().err
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "train_config.yaml").write_text(
        f"val_data_dir: {scenes_root}\nbatch_size: 2\n"
    )
    assert main(["eval", "--seed-defaults", "--device", "cpu", "--model", "blend"]) == 0
    assert re.search(
        r"val\s+blend\s+3\s", capsys.readouterr().out
    )  # 5 frames -> 3 skip-one triplets


def test_eval_py_prefers_the_best_checkpoint(
    tmp_path: Path, scenes_root: Path, monkeypatch, capsys
):
    from emavfi.models.checkpoints import save_checkpoint
    from emavfi.models.registry import create_model

    monkeypatch.chdir(tmp_path)
    save_checkpoint(create_model("ema-tiny"), tmp_path / "best_ema_vfi.safetensors")
    assert (
        main(
            [
                "eval",
                "--seed-defaults",
                "--device",
                "cpu",
                "--dataset",
                f"scenes:{scenes_root}",
                "--limit",
                "1",
                "-o",
                "out",
                "--no-html",
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["models"] == ["best_ema_vfi"]
    assert data["settings"]["models"]["best_ema_vfi"]["spec"] == "ema-tiny"


def test_eval_py_uses_val_sources(tmp_path: Path, triplet_root: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "train_config.yaml").write_text(
        f"val_data_dir: nowhere\nval_sources: [{{kind: triplet, path: {triplet_root}}}]\n"
    )
    assert main(["eval", "--seed-defaults", "--device", "cpu", "--model", "blend"]) == 0
    assert re.search(r"triplets\s+blend\s+3\s", capsys.readouterr().out)


def test_report_without_examples_has_no_images(tmp_path: Path, triplet_root: Path):
    out = tmp_path / "out"
    args = ["eval", "--model", "blend", "--device", "cpu", "--dataset", f"triplet:{triplet_root}"]
    assert main([*args, "-o", str(out), "--examples", "0"]) == 0
    page = (out / "report.html").read_text()
    assert "<svg" in page and "<img" not in page
    assert not any((out / "report_files").iterdir())


def test_fast_mode_reaches_the_learned_model_and_is_recorded(tmp_path: Path, triplet_root: Path):
    runs = {}
    for label, extra in (("full", []), ("fast", ["--fast"])):
        out = tmp_path / label
        argv = [
            "eval",
            "--model",
            "ema-cpu",
            "--device",
            "cpu",
            "--dataset",
            f"triplet:{triplet_root}",
        ]
        assert main(argv + ["-o", str(out), "--no-html"] + extra) == 0
        runs[label] = json.loads((out / "results.json").read_text())
    assert runs["fast"]["settings"]["scale"] == 0.5 and runs["fast"]["settings"]["refine_at_scale"]
    assert (
        runs["full"]["settings"]["scale"] == 1.0 and not runs["full"]["settings"]["refine_at_scale"]
    )
    psnr = {k: [s["psnr"] for s in v["samples"]] for k, v in runs.items()}
    assert psnr["fast"] != psnr["full"]  # the network really ran at half size


def test_rendered_large_motion_suite_needs_no_data_root(tmp_path: Path, capsys):
    out = tmp_path / "out"
    argv = ["eval", "--model", "blend", "--device", "cpu", "--dataset", "large-motion-synthetic"]
    assert main([*argv, "--limit", "2", "-o", str(out), "--no-html"]) == 0
    assert re.search(r"large-motion-synthetic\s+blend\s+2\s", capsys.readouterr().out)
    data = json.loads((out / "results.json").read_text())
    assert data["datasets"][0]["path"] is None and data["datasets"][0]["options"]["count"] == 48
    # The average of two frames 16-64 px apart is a double exposure: softer than its inputs.
    ratios = [s["sharpness"] for s in data["samples"]]
    assert len(ratios) == 2 and all(0 < r < 0.9 for r in ratios)
    assert data["summary"]["large-motion-synthetic"]["blend"]["sharpness"] == pytest.approx(
        sum(ratios) / 2
    )
    assert "| sharpness |" in (out / "results.md").read_text().splitlines()[0]


def test_each_target_of_a_window_is_scored_against_its_own_truth_and_named_by_its_t(
    tmp_path, monkeypatch
):
    """A window with ground truth at t = 0.25, 0.5, 0.75 of a brightness ramp: the blend
    engine is exact at each t, so each sample (named ``window@t=...``) scores infinite PSNR;
    scoring a frame against another t's truth would not. Time is per frame made."""
    paths = {}
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        paths[t] = tmp_path / f"{t}.png"
        write_image(paths[t], np.full((16, 16, 3), round(40 + 160 * t), np.uint8))
    window = FrameWindow(
        "ramp", (paths[0.0], paths[1.0]), tuple((t, paths[t]) for t in (0.25, 0.5, 0.75))
    )
    evaluator = runner.Evaluator(["blend"], device="cpu")
    clock = iter([10.0, 10.3])  # the timed call takes 0.3 s for 3 frames
    monkeypatch.setattr(runner, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    calls = []
    interp = evaluator.interpolators["blend"]
    frames = interp.frames
    interp.frames = lambda *args: calls.append(args[2]) or frames(*args)
    results = evaluator.evaluate_window("set", window)
    assert [r.sample for r in results] == ["ramp@t=0.250", "ramp@t=0.500", "ramp@t=0.750"]
    assert [r.timestep for r in results] == [0.25, 0.5, 0.75]
    assert all(math.isinf(r.psnr) for r in results)
    assert calls == [[0.25], [0.25, 0.5, 0.75]]  # one warm-up frame, then the timed call
    assert [r.ms_per_frame for r in results] == pytest.approx([100.0] * 3)
    assert evaluator.sample_windows[("set", "ramp@t=0.750")] == (window, 2)
