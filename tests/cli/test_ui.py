"""``emavfi ui`` without its extra or with bad options: one line, exit 2, no temporary folder."""

from __future__ import annotations

import socket
import sys
import tempfile
from pathlib import Path

import pytest

from emavfi.cli.main import main


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("GRADIO_TEMP_DIR", "unset after the test")  # run() sets it
    return tmp_path


def test_without_gradio_it_says_how_to_install_it(temp_root: Path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio fails as if not installed
    monkeypatch.delitem(sys.modules, "emavfi.ui.page", raising=False)
    assert main(["ui", "--port", "1"]) == 2
    assert capsys.readouterr().err.strip() == (
        'emavfi ui: error: the web UI needs Gradio: pip install "emavfi[ui]"'
    )
    assert not list(temp_root.glob("emavfi-ui-*"))


def test_upload_limit_must_be_positive(temp_root: Path, capsys):
    assert main(["ui", "--max-upload-mb", "0"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "emavfi ui: error: --max-upload-mb must be positive, got 0"
    )
    assert not list(temp_root.glob("emavfi-ui-*"))


def test_a_port_in_use_is_one_line(temp_root: Path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--port", str(port), "--checkpoints", str(temp_root)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"emavfi ui: error: cannot listen on 127.0.0.1:{port} (in use?); choose another --port"
    )
    assert not list(temp_root.glob("emavfi-ui-*"))
