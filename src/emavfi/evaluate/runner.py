"""One evaluation path for every model and dataset: models x suites on the same samples.

For each window of each suite the input and ground-truth frames are decoded once and every model
predicts the same targets, so the figures compare like with like. Weight-free engines (``blend``,
``classical``) go through the same ``Interpolator`` as networks. Results are plain records
(`SampleResult`) from which tables, JSON and the HTML report are built.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from emavfi import metrics
from emavfi.errors import EmavfiError
from emavfi.evaluate.suites import Suite, load_windows
from emavfi.models.registry import list_models

log = logging.getLogger(__name__)

METRICS = ("psnr", "ssim", "ie", "lpips", "sharpness")
# True: higher is better; False: lower; None: closest to 1 (the output as sharp as its inputs).
HIGHER_IS_BETTER = {
    "psnr": True,
    "ssim": True,
    "ie": False,
    "lpips": False,
    "sharpness": None,
    "ms_per_frame": False,
}
LPIPS_UNAVAILABLE = "n/a: LPIPS needs weights that are not shipped (give --lpips-weights PATH)"


@dataclass
class SampleResult:
    """The figures of one model on one ground-truth frame."""

    dataset: str
    sample: str
    model: str
    timestep: float
    psnr: float
    ssim: float
    ie: float
    lpips: float | None
    sharpness: float  # variance of the Laplacian, output / mean of the inputs'
    ms_per_frame: float


@dataclass
class EvalResults:
    """Everything one run measured, plus the settings that reproduce it."""

    models: list[str]
    suites: list[Suite]
    samples: list[SampleResult]
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """``{dataset or "overall": {model: {metric: mean, "count": n}}}``.

        Means are over ground-truth frames; "overall" pools the frames of every dataset.
        """
        table: dict[str, dict[str, dict[str, float | None]]] = {}
        groups = [suite.name for suite in self.suites] + ["overall"]
        for group in groups:
            table[group] = {}
            for model in self.models:
                rows = [
                    r for r in self.samples if r.model == model and group in ("overall", r.dataset)
                ]
                table[group][model] = _means(rows)
        return table

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: settings, summary and every per-sample record."""
        return {
            "settings": self.settings,
            "models": self.models,
            "datasets": [suite.as_dict() for suite in self.suites],
            "summary": self.summary(),
            "samples": [asdict(r) for r in self.samples],
        }


def _means(rows: list[SampleResult]) -> dict[str, float | None]:
    means: dict[str, float | None] = {"count": len(rows)}
    for key in (*METRICS, "ms_per_frame"):
        values = [getattr(r, key) for r in rows if getattr(r, key) is not None]
        means[key] = float(np.mean(values)) if values else None
    return means


def model_label(model: str | Path | nn.Module) -> str:
    """A short name for tables: the registry name, or a checkpoint's file stem."""
    if isinstance(model, nn.Module):
        spec = getattr(model, "spec", None)
        return spec.name if spec else type(model).__name__
    text = str(model)
    if text in list_models():  # a registry name, even one with a dot (rife-4.25)
        return text
    path = Path(text)
    return path.stem if path.suffix else text


class Evaluator:
    """Runs models side by side on suites.

    Args:
        models: registry names, checkpoint paths or modules (None in the list = default model).
        device: ``auto``, ``cpu``, ``cuda`` ...
        lpips: an ``emavfi.evaluate.lpips.LPIPS`` module, or None (LPIPS reported as n/a).
        progress: show a tqdm bar per suite.
        scale, refine_at_scale, precision, backend: the Interpolator options of the same
            names (``--scale``, ``--fast``, ``--precision``, ``--backend``) for every model
            (engines ignore them).
    """

    def __init__(
        self,
        models: list[str | Path | nn.Module | None],
        device: str = "auto",
        lpips: nn.Module | None = None,
        progress: bool = False,
        scale: float = 1.0,
        refine_at_scale: bool = False,
        precision: str = "auto",
        backend: str = "auto",
    ) -> None:
        from emavfi.interpolator import Interpolator

        if not models:
            raise EmavfiError("no model to evaluate")
        self.interpolators: dict[str, Interpolator] = {}
        for model in models:
            interp = Interpolator(
                model,
                device=device,
                scale=scale,
                refine_at_scale=refine_at_scale,
                precision=precision,
                backend=backend,
            )
            label = model_label(model) if model is not None else interp.name
            while label in self.interpolators:
                label += "'"
            self.interpolators[label] = interp
        self.lpips = lpips
        self.progress = progress
        self._warm: set[str] = set()
        # (dataset, sample) -> (window, index of its target): lets the report re-run a sample.
        self.sample_windows: dict[tuple[str, str], tuple[Any, int]] = {}

    @property
    def models(self) -> list[str]:
        return list(self.interpolators)

    def predict(self, window, index: int | None = None) -> dict[str, Any]:
        """Decode one window and run every model on it (untimed; used by the report), on all its
        targets or only on target ``index``.

        Returns ``{"inputs": (f0, f1), "targets": [(t, gt)], "preds": {model: [frame per t]}}``.
        """
        from emavfi.data.sources import load_frame

        inputs = (load_frame(window.inputs[0]), load_frame(window.inputs[1]))
        chosen = window.targets if index is None else window.targets[index : index + 1]
        targets = [(float(t), load_frame(ref)) for t, ref in chosen]
        times = [t for t, _ in targets]
        preds = {name: interp.frames(*inputs, times) for name, interp in self.interpolators.items()}
        return {"inputs": inputs, "targets": targets, "preds": preds}

    def evaluate_window(self, dataset: str, window) -> list[SampleResult]:
        """Every model's figures on every target of ``window``."""
        from emavfi.data.sources import load_frame

        frame0, frame1 = load_frame(window.inputs[0]), load_frame(window.inputs[1])
        targets = [(float(t), load_frame(ref)) for t, ref in window.targets]
        times = [t for t, _ in targets]
        results = []
        for name, interp in self.interpolators.items():
            if name not in self._warm:  # first call pays for allocation / kernel selection
                interp.frames(frame0, frame1, times[:1])
                self._warm.add(name)
            start = time.perf_counter()
            preds = interp.frames(frame0, frame1, times)
            ms_per_frame = 1000.0 * (time.perf_counter() - start) / len(times)
            for index, ((t, gt), pred) in enumerate(zip(targets, preds)):
                sample = window.name if len(targets) == 1 else f"{window.name}@t={t:.3f}"
                self.sample_windows[(dataset, sample)] = (window, index)
                scores = self._score(pred, gt, (frame0, frame1), f"{dataset}/{sample}")
                results.append(
                    SampleResult(dataset, sample, name, t, **scores, ms_per_frame=ms_per_frame)
                )
        return results

    def _score(self, pred, gt, inputs, label: str) -> dict[str, float | None]:
        if pred.shape != gt.shape:
            raise EmavfiError(f"{label}: ground truth {gt.shape} and inputs differ in size")
        lpips_value = None
        if self.lpips is not None:
            from emavfi.evaluate.lpips import lpips_distance

            lpips_value = lpips_distance(self.lpips, pred, gt)
        return {
            "psnr": metrics.psnr(pred, gt),
            "ssim": metrics.ssim(pred, gt),
            "ie": metrics.interpolation_error(pred, gt),
            "lpips": lpips_value,
            "sharpness": metrics.sharpness_ratio(pred, *inputs),
        }

    def run(self, suites: list[Suite]) -> EvalResults:
        """Evaluate every model on every suite; windows are loaded once per suite."""
        from tqdm import tqdm

        samples: list[SampleResult] = []
        for suite in suites:
            windows = load_windows(suite)
            log.info("%s: %d samples from %s", suite.name, len(windows), suite.path or suite.kind)
            for window in tqdm(windows, desc=suite.name, unit="sample", disable=not self.progress):
                samples.extend(self.evaluate_window(suite.name, window))
        return EvalResults(self.models, list(suites), samples, settings=self.settings())

    def settings(self) -> dict[str, Any]:
        """How this run measured (recorded in the JSON next to the figures)."""
        device = next(iter(self.interpolators.values())).device
        first = next(iter(self.interpolators.values()))
        return {
            "device": str(device),
            "scale": first.scale,
            "refine_at_scale": first.refine_at_scale,
            "precision": {name: i.precision for name, i in self.interpolators.items()},
            "backend": first.backend,
            "models": {
                name: {"spec": i.spec.name, "source": i.name}
                for name, i in self.interpolators.items()
            },
            "metrics": {
                "psnr": "RGB, prediction rounded to 8 bit, whole frame, 10*log10(255^2/MSE)",
                "ssim": "11x11 Gaussian window sigma 1.5, K=(0.01, 0.03), per RGB channel then averaged",
                "ie": "Middlebury IE (Baker et al.): RMS over pixels of the RGB difference's L2 norm, 8 bit",
                "lpips": self.lpips_note(),
                "sharpness": "variance of the Laplacian (3x3, 8-bit BT.601 grey) of the output / "
                "the mean of the two inputs'; 1 = as sharp as the inputs",
                "ms_per_frame": "wall time of one model call per window / frames it produced (after one warm-up)",
            },
        }

    def lpips_note(self) -> str:
        if self.lpips is None:
            return LPIPS_UNAVAILABLE
        return f"LPIPS-{self.lpips.net_name} (v0.1 linear layers from the given file)"


def example_samples(results: EvalResults, dataset: str, count: int) -> list[tuple[str, str]]:
    """``(label, sample)`` pairs of ``dataset`` for the report: each model's ``count`` worst
    samples by its own PSNR (one shown once when it is among the worst of several models, its
    label naming them all), then the ``count`` best by PSNR averaged over the models."""
    if count <= 0:
        return []
    by_sample: dict[str, dict[str, float]] = {}
    for r in results.samples:
        if r.dataset == dataset:  # identical frames give inf: capped so that means stay finite
            by_sample.setdefault(r.sample, {})[r.model] = min(r.psnr, 100.0)
    worst_for: dict[str, list[str]] = {}
    for model in results.models:
        order = sorted(
            (s for s in by_sample if model in by_sample[s]), key=lambda s: by_sample[s][model]
        )
        for rank, sample in enumerate(order[:count], start=1):
            worst_for.setdefault(sample, []).append(f"{model} #{rank}")
    shown = [(f"worst for {', '.join(tags)}", sample) for sample, tags in worst_for.items()]
    by_mean = sorted(by_sample, key=lambda s: float(np.mean(list(by_sample[s].values()))))
    best = [s for s in reversed(by_mean) if s not in worst_for][:count]
    return shown + [("best on average", sample) for sample in best]


def finite_or_text(value: float | None) -> float | str | None:
    """JSON has no infinity: write ``"inf"`` instead (identical frames give infinite PSNR)."""
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value
