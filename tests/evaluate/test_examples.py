"""Which samples the report shows (each model's own worst by PSNR, then the best on average),
and re-running one of them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from emavfi.evaluate.runner import EvalResults, Evaluator, SampleResult, example_samples
from emavfi.evaluate.suites import Suite, load_windows


def _results(psnr: dict[str, dict[str, float]]) -> EvalResults:
    """Results of models on samples of one dataset, with the given PSNRs (other figures dummy)."""
    samples = [
        SampleResult("set", sample, model, 0.5, value, 0.9, 5.0, None, 1.0, 10.0)
        for sample, by_model in psnr.items()
        for model, value in by_model.items()
    ]
    return EvalResults(["a", "b"], [Suite("set", "triplet", None)], samples)


def test_each_models_worst_is_shown_even_when_the_average_hides_it():
    # Means: s1 30, s2 26, s3 27.5, s4 35. By the mean, s2 is the worst; model a's worst is s1.
    results = _results(
        {
            "s1": {"a": 20.0, "b": 40.0},
            "s2": {"a": 30.0, "b": 22.0},
            "s3": {"a": 25.0, "b": 30.0},
            "s4": {"a": 34.0, "b": 36.0},
        }
    )
    assert example_samples(results, "set", 1) == [
        ("worst for a #1", "s1"),
        ("worst for b #1", "s2"),
        ("best on average", "s4"),
    ]


def test_a_sample_worst_for_several_models_is_shown_once():
    results = _results(
        {
            "s1": {"a": 20.0, "b": 21.0},
            "s2": {"a": 24.0, "b": 30.0},
            "s3": {"a": 30.0, "b": 25.0},
            "s4": {"a": math.inf, "b": 40.0},  # identical frames: capped, still the best
        }
    )
    assert example_samples(results, "set", 2) == [
        ("worst for a #1, b #1", "s1"),
        ("worst for a #2", "s2"),
        ("worst for b #2", "s3"),
        ("best on average", "s4"),
    ]
    assert example_samples(results, "set", 0) == []
    assert example_samples(results, "other", 2) == []


def test_predict_runs_only_the_target_asked_for(scenes_root: Path):
    window = load_windows(Suite("val", "scenes", scenes_root, options={"gap": 4}))[0]
    evaluator = Evaluator(["blend"], device="cpu")
    whole, one = evaluator.predict(window), evaluator.predict(window, 2)
    assert [t for t, _ in whole["targets"]] == [0.25, 0.5, 0.75]
    assert [t for t, _ in one["targets"]] == [0.75] and len(one["preds"]["blend"]) == 1
    np.testing.assert_array_equal(one["targets"][0][1], whole["targets"][2][1])
    np.testing.assert_array_equal(one["preds"]["blend"][0], whole["preds"]["blend"][2])
