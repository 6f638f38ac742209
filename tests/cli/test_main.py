"""`emavfi --version` and `emavfi models`, through the CLI's main()."""

from importlib import metadata
from pathlib import Path

import pytest

import emavfi
from emavfi.cli.main import main
from emavfi.models.registry import DEFAULT_MODEL, get_spec, list_models


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"emavfi {metadata.version('emavfi')}\n"
    assert emavfi.__version__ == metadata.version("emavfi")


def _models_output(capsys) -> list[str]:
    assert main(["models"]) == 0
    return capsys.readouterr().out.splitlines()


def test_models_names_the_default(capsys):
    lines = _models_output(capsys)
    defaults = [line for line in lines if "(default)" in line]
    assert len(defaults) == 1 and defaults[0].startswith(f"{DEFAULT_MODEL} (default) ")
    assert lines[-1].startswith(f"Without --model, commands use {DEFAULT_MODEL}.")


@pytest.mark.parametrize("name", list_models())
def test_models_says_where_the_weights_are(name, capsys):
    lines = _models_output(capsys)
    row = next(i for i, line in enumerate(lines) if line.split()[0] == name)
    weights = lines[row + 1].split("weights: ", 1)[1]
    spec = get_spec(name)
    if not spec.learned:
        assert weights == "none (weight-free)"
    elif spec.weights is None:
        assert "needs a path" in weights and "--model FILE" in weights
    else:
        path = Path(weights)
        assert path.is_absolute() and path.is_file() and path.name == spec.weights
