"""The options several subcommands share are defined once, in ``emavfi.cli.options``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

import emavfi.cli
from emavfi.cli import demo, eval, interpolate, options, pair

SHARED = ["--model", "--device", "--quiet", "--scale", "--fast", "--tta", "--overwrite"]


def test_shared_options_are_written_only_in_options_py():
    package = Path(emavfi.cli.__file__).parent
    for path in package.glob("*.py"):
        if path.name == "options.py":
            continue
        text = path.read_text()
        for flag in SHARED:
            if flag == "--model" and path.name == "eval.py":  # eval's --model is repeatable
                continue
            assert not re.search(rf"add_argument\([^)]*\"{flag}\"", text), (path.name, flag)


@pytest.mark.parametrize("command", [pair, interpolate, demo, eval])
def test_device_is_the_same_option_everywhere(command):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    reference = argparse.ArgumentParser()
    options.add_device_argument(reference)
    (device,) = [a for a in parser._actions if "--device" in a.option_strings]
    (expected,) = [a for a in reference._actions if "--device" in a.option_strings]
    assert (device.default, device.help) == (expected.default, expected.help)
    assert parser.parse_args([*_required(command), "--device", "cpu"]).device == "cpu"


def _required(command) -> list[str]:
    return {pair: ["a.png", "b.png", "-o", "out"], interpolate: ["in.mp4"]}.get(command, [])
