"""benchmarks/quality.py takes the new suites (the README's large-motion table comes from it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "quality.py"


def _quality():
    spec = importlib.util.spec_from_file_location("quality_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_large_motion_synthetic_table(capsys):
    quality = _quality()
    assert (
        quality.main(["--dataset", "large-motion-synthetic", "--limit", "1", "--device", "cpu"])
        == 0
    )
    table = capsys.readouterr().out
    assert table.startswith("| dataset | model |") and "| sharpness |" in table
    for model in ("blend", "classical"):
        assert f"| large-motion-synthetic | {model} | 1 |" in table


def test_unknown_suite_is_one_line_and_exit_2(capsys):
    assert _quality().main(["--dataset", "large-motion", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "large-motion-synthetic" in err and len(err.splitlines()) == 1
