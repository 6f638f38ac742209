"""Reports built from `EvalResults`: console and Markdown tables, JSON, and an HTML page.

The HTML report is one self-contained file (inline CSS and SVG bar charts, no scripts, no new
dependency) with its images in a folder beside it. For each dataset it shows every model's worst
samples by its own PSNR and the best samples on average: the inputs and the ground truth, then
one row per model with the ground truth, the model's frame and its error heat map enlarged where
the models err most, and the whole frame and heat map, so that artefacts (a torn limb, a
speckled blob) are seen next to what they should have been.
Every file is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import cv2
import numpy as np

from emavfi import metrics
from emavfi.errors import EmavfiError
from emavfi.evaluate.runner import (
    HIGHER_IS_BETTER,
    EvalResults,
    Evaluator,
    example_samples,
    finite_or_text,
)
from emavfi.imageio import write_image
from emavfi.tempfiles import atomic_write_text

COLUMNS = (
    ("psnr", "PSNR (dB)", 2),
    ("ssim", "SSIM", 4),
    ("ie", "IE", 2),
    ("lpips", "LPIPS", 4),
    ("sharpness", "sharpness", 3),
    ("ms_per_frame", "ms/frame", 1),
)
HEATMAP_MAX = 64.0  # error (8-bit RGB L2 norm) shown as the hottest colour, the same for all models
CROP = 96
CROP_ZOOM = 3


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def table_rows(results: EvalResults) -> tuple[list[str], list[list[str]]]:
    """Header and rows (dataset, model, count, metrics...) of the summary table."""
    header = ["dataset", "model", "frames"] + [title for _, title, _ in COLUMNS]
    rows = []
    for group, per_model in results.summary().items():
        if group == "overall" and len(results.suites) < 2:
            continue
        for model, means in per_model.items():
            rows.append(
                [group, model, str(means["count"])] + [_fmt(means[k], d) for k, _, d in COLUMNS]
            )
    return header, rows


def console_table(results: EvalResults) -> str:
    """The summary as aligned plain text."""
    header, rows = table_rows(results)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(results: EvalResults) -> str:
    """The summary as a Markdown table (what the README's results table is made of)."""
    header, rows = table_rows(results)
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return finite_or_text(value)


def write_json(results: EvalResults, path: Path) -> None:
    """Every per-sample figure, the summary and the settings (infinite PSNR written as "inf")."""
    atomic_write_text(
        path, json.dumps(_jsonable(results.as_dict()), indent=1, allow_nan=False) + "\n"
    )


def _bar_chart(title: str, values: dict[str, float | None], higher_better: bool | None) -> str:
    """One inline-SVG horizontal bar chart; bars start at the smallest value's 90% for contrast."""
    finite = {m: v for m, v in values.items() if v is not None and math.isfinite(v)}
    bar_h, label_w, plot_w = 22, 140, 300
    height = bar_h * len(values) + 28
    low = min(finite.values(), default=0.0)
    low = low * 0.9 if low > 0 else low
    better = {True: "higher", False: "lower", None: "closest to 1"}[higher_better]
    note = f"{better} is better (bars start at {low:.3g})"
    parts = [
        f'<svg class="chart" width="{label_w + plot_w + 70}" height="{height}" role="img">',
        f'<text x="0" y="14" class="t">{html.escape(title)}: {note}</text>',
    ]
    high = max(finite.values(), default=1.0)
    span = (high - low) or 1.0
    for row, (model, value) in enumerate(values.items()):
        y = 22 + row * bar_h
        width = plot_w * (value - low) / span if model in finite else 0
        parts.append(f'<text x="0" y="{y + 15}">{html.escape(model)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{max(width, 1):.1f}" height="{bar_h - 6}"/>'
        )
        label = _fmt(value, 3 if abs(value or 0) < 10 else 2) if value is not None else "n/a"
        parts.append(f'<text x="{label_w + max(width, 1) + 4:.1f}" y="{y + 15}">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _heatmap(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    error = np.clip(metrics.error_map(pred, gt) / HEATMAP_MAX * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(error, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def _crop_box(errors: list[np.ndarray]) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the CROP-square where the models' mean error is largest."""
    mean_error = np.mean(errors, axis=0).astype(np.float32)
    height, width = mean_error.shape
    size_h, size_w = min(CROP, height), min(CROP, width)
    smoothed = cv2.blur(mean_error, (size_w, size_h))
    cy, cx = np.unravel_index(int(np.argmax(smoothed)), smoothed.shape)
    top = int(np.clip(cy - size_h // 2, 0, height - size_h))
    left = int(np.clip(cx - size_w // 2, 0, width - size_w))
    return top, left, size_h, size_w


def _zoom(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    top, left, h, w = box
    crop = image[top : top + h, left : left + w]
    return cv2.resize(crop, (w * CROP_ZOOM, h * CROP_ZOOM), interpolation=cv2.INTER_NEAREST)


def _figure(src: str, caption: str) -> str:
    return (
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _example_html(
    results: EvalResults,
    evaluator: Evaluator,
    dataset: str,
    sample: str,
    label: str,
    images: Path,
    stem: str,
) -> str:
    """One sample: inputs and ground truth, then per model the ground truth, its frame and its
    error heat map, cropped and enlarged where the models err most, and the whole frame and map."""
    window, index = evaluator.sample_windows[(dataset, sample)]
    data = evaluator.predict(window, index)  # only the target shown: a 720p window has several
    t, gt = data["targets"][0]
    preds = {model: frames[0] for model, frames in data["preds"].items()}
    box = _crop_box([metrics.error_map(p, gt) for p in preds.values()])

    def figure(key: str, caption: str, image: np.ndarray, crop: bool = False) -> str:
        # Whole frames as high-quality JPEG (an overview, small files); crops lossless PNG.
        name = f"{stem}_{key}_crop.png" if crop else f"{stem}_{key}_full.jpg"
        if not (images / name).exists():
            write_image(images / name, _zoom(image, box) if crop else image)
        return _figure(f"{images.name}/{name}", caption)

    top, left, h, w = box
    where = f"crop {w}x{h} at x={left}, y={top}, {CROP_ZOOM}x"
    inputs = data["inputs"]
    rows = [
        figure("in0", "input 0", inputs[0])
        + figure("gt", f"ground truth t={t:g}", gt)
        + figure("in1", "input 1", inputs[1]),
        figure("in0", f"input 0, {where}", inputs[0], crop=True)
        + figure("gt", f"ground truth, {where}", gt, crop=True)
        + figure("in1", f"input 1, {where}", inputs[1], crop=True),
    ]
    for k, (model, pred) in enumerate(preds.items()):
        r = next(
            r for r in results.samples if (r.dataset, r.sample, r.model) == (dataset, sample, model)
        )
        scores = (
            f"{model}: {_fmt(r.psnr, 2)} dB, SSIM {_fmt(r.ssim, 4)}, IE {_fmt(r.ie, 2)}, "
            f"sharpness {_fmt(r.sharpness, 3)}"
        )
        heat = _heatmap(pred, gt)
        error = f"{model} error (|pred - gt|, 0-{HEATMAP_MAX:g} shown black to yellow)"
        rows.append(
            figure("gt", f"ground truth, {where}", gt, crop=True)
            + figure(f"m{k}", f"{scores}; {where}", pred, crop=True)
            + figure(f"m{k}err", f"{error}; {where}", heat, crop=True)
            + figure(f"m{k}", scores, pred)
            + figure(f"m{k}err", error, heat)
        )
    return f"<h3>{html.escape(label)}: {html.escape(sample)}</h3>" + "".join(
        f"<div class=row>{row}</div>" for row in rows
    )


STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1600px}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:nth-child(-n+2){text-align:left}
.row{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:6px}figure{margin:0}
figure img{max-width:300px;display:block}figcaption{font-size:12px;max-width:300px}
.chart text{font-size:12px}.chart .t{font-weight:bold}.chart rect{fill:#4a78b5}
.charts{display:flex;flex-wrap:wrap;gap:24px}"""


def _summary_html(results: EvalResults) -> str:
    header, rows = table_rows(results)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(results: EvalResults, evaluator: Evaluator, outdir: Path, examples: int = 2) -> Path:
    """``outdir/report.html`` with its images in ``outdir/report_files/``; returns the HTML path."""
    images = outdir / "report_files"
    images.mkdir(parents=True, exist_ok=True)
    for old in [*images.glob("*.png"), *images.glob("*.jpg")]:
        old.unlink()
    summary = results.summary()
    parts = [
        "<!DOCTYPE html><html><head><meta charset=utf-8><title>emavfi evaluation</title>",
        f"<style>{STYLE}</style></head><body><h1>emavfi evaluation</h1>",
        _summary_html(results),
        "<h2>How it was measured</h2><ul>",
    ]
    parts += [
        f"<li><b>{k}</b>: {html.escape(str(v))}</li>"
        for k, v in results.settings.get("metrics", {}).items()
    ]
    parts.append(f"<li><b>device</b>: {html.escape(str(results.settings.get('device')))}</li></ul>")
    for suite in results.suites:
        source = f"{suite.kind}: {suite.path if suite.path is not None else suite.options}"
        parts.append(f"<h2>{html.escape(suite.name)} ({html.escape(source)})</h2>")
        charts = [
            _bar_chart(
                title,
                {m: summary[suite.name][m][key] for m in results.models},
                HIGHER_IS_BETTER[key],
            )
            for key, title, _ in COLUMNS
            if any(summary[suite.name][m][key] is not None for m in results.models)
        ]
        parts.append(f"<div class=charts>{''.join(charts)}</div>")
        for label, sample in example_samples(results, suite.name, examples):
            stem = f"{len(parts):03d}_{label.split()[0]}"
            parts.append(_example_html(results, evaluator, suite.name, sample, label, images, stem))
    parts.append("</body></html>\n")
    path = outdir / "report.html"
    atomic_write_text(path, "\n".join(parts))
    return path


def write_outputs(
    results: EvalResults,
    evaluator: Evaluator,
    outdir: str | Path,
    html_report: bool = True,
    examples: int = 2,
) -> dict[str, Path]:
    """results.json, results.md and (unless disabled) report.html in ``outdir``; returns their paths."""
    outdir = Path(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmavfiError(f"cannot create output folder {outdir}: {exc.strerror}") from exc
    paths = {"json": outdir / "results.json", "markdown": outdir / "results.md"}
    write_json(results, paths["json"])
    atomic_write_text(paths["markdown"], markdown_table(results))
    if html_report:
        paths["html"] = write_html(results, evaluator, outdir, examples)
    return paths
