"""Evaluation suites as data: which dataset, in which layout, with which options.

A suite is ``KIND:PATH`` (a source kind of ``emavfi.data.sources``) plus options (``limit``
and the source's own, e.g. ``gap`` for scene folders and videos). Presets name the standard test
sets and our large-motion suites; those that read files resolve only when a root is given
(``--data-root``), so the installed package never depends on a particular machine's paths.

The large-motion presets (the regime where interpolators tear and smear):

- ``large-motion-synthetic``: 48 rendered 256x256 windows with exact ground truth at t = 0.5,
  every moving layer travelling 16-64 px (``emavfi.data.sources.rendered``); needs no data.
- ``foreman-gap4``, ``zhling-gap4``: real footage never used for training, two of the openh264
  test streams under ``streams/``: *Foreman* (176x144, a shaking hand-held camera, 5-14 px
  between the inputs, every 4th window) and a 1280x720 office clip (a person turning, 24-34 px,
  every 2nd window; 95th percentiles of the DIS flow); inputs 4 frames apart, the three real
  frames between them as ground truth at k/4.
  (At gap 8 Foreman's shake is no longer linear and every interpolator stays within 0.3 dB of
  the plain average: nothing left to compare.)
- ``middlebury-gap4``: the Middlebury sequences that come with eight frames (frame07..frame14 of
  the ``other-color-allframes`` download, e.g. Beanbags, DogDance, MiniCooper, Walking) in
  ``middlebury/other-data``: inputs 4 frames apart, targets at k/4. The usual two-frame copy
  holds no such window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emavfi.errors import EmavfiError

KINDS = ("middlebury", "triplet", "vimeo", "scenes", "video")


@dataclass(frozen=True)
class Preset:
    """A named suite: a source kind, its path under the data root (None: it reads no files)
    and the source's options."""

    kind: str
    folder: str | None
    options: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "middlebury": Preset("middlebury", "middlebury"),
    "ucf101": Preset("triplet", "ucf101"),
    "vimeo90k": Preset("vimeo", "vimeo_triplet"),
    "large-motion-synthetic": Preset(
        "rendered",
        None,
        {
            "count": 48,
            "size": 256,
            "min_motion": 16.0,
            "max_motion": 64.0,
            "timestep": 0.5,
            "seed": 11,
        },
    ),
    "middlebury-gap4": Preset("scenes", "middlebury/other-data", {"gap": 4}),
    "foreman-gap4": Preset("video", "streams/BA_MW_D.264", {"gap": 4, "stride": 4}),
    "zhling-gap4": Preset("video", "streams/Zhling_1280x720.264", {"gap": 4, "stride": 2}),
}


@dataclass(frozen=True)
class Suite:
    """One dataset to evaluate on.

    Attributes:
        name: short label for tables (the preset name or the folder/file name).
        kind: a source kind (see ``KINDS``).
        path: the dataset's folder or video file (None for ``rendered`` scenes).
        limit: evaluate at most this many windows (the first ones, in the source's order).
        options: extra keyword options for ``open_source`` (e.g. ``{"gap": 2}``).
    """

    name: str
    kind: str
    path: Path | None
    limit: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (recorded in the results so a run can be repeated)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "path": None if self.path is None else str(self.path),
            "limit": self.limit,
            "options": dict(self.options),
        }


def parse_suite(text: str, data_root: str | Path | None = None, limit: int | None = None) -> Suite:
    """A suite from ``KIND:PATH`` or a preset name (``middlebury``, ``ucf101`` ...; those that
    read files need ``data_root``).

    Unknown kinds, presets without a root and missing paths raise EmavfiError with one line.
    """
    if limit is not None and limit < 1:
        raise EmavfiError(f"--limit must be at least 1, got {limit}")
    kind, sep, rest = text.partition(":")
    if sep and kind in KINDS:
        path = Path(rest).expanduser()
        name = path.stem if kind == "video" else (path.name or str(path))
        return _checked(Suite(name=name, kind=kind, path=path, limit=limit))
    if not sep and text in PRESETS:
        return _checked(_preset_suite(text, data_root, limit))
    if sep and len(kind) > 1:
        raise EmavfiError(
            f"unknown dataset kind {kind!r} in {text!r}; known kinds: {', '.join(KINDS)}"
        )
    raise EmavfiError(
        f"dataset {text!r} is neither KIND:PATH (kinds: {', '.join(KINDS)}) nor a preset "
        f"({', '.join(PRESETS)})"
    )


def _preset_suite(name: str, data_root: str | Path | None, limit: int | None = None) -> Suite:
    """The suite of preset ``name``, its path under ``data_root`` (unchecked)."""
    preset = PRESETS[name]
    if preset.folder is None:
        return Suite(name, preset.kind, None, limit, dict(preset.options))
    if data_root is None:
        raise EmavfiError(
            f"dataset preset {name!r} needs --data-root (the folder that holds {preset.folder})"
        )
    path = Path(data_root).expanduser() / preset.folder
    return Suite(name, preset.kind, path, limit, dict(preset.options))


def _checked(suite: Suite) -> Suite:
    if suite.path is not None and not suite.path.exists():
        raise EmavfiError(f"{suite.kind} dataset not found: {suite.path}")
    return suite


def unique_names(suites: list[Suite]) -> list[Suite]:
    """The same suites, with ``-2``, ``-3`` ... appended to repeated names."""
    seen: dict[str, int] = {}
    renamed = []
    for suite in suites:
        count = seen.get(suite.name, 0) + 1
        seen[suite.name] = count
        name = suite.name if count == 1 else f"{suite.name}-{count}"
        renamed.append(Suite(name, suite.kind, suite.path, suite.limit, dict(suite.options)))
    return renamed


def load_windows(suite: Suite) -> list:
    """The suite's ``FrameWindow``s (at most ``limit``), from ``emavfi.data.sources``."""
    from emavfi.data.sources import open_source

    windows = open_source(suite.kind, suite.path, **suite.options)
    if not windows:
        raise EmavfiError(f"no samples found in {suite.kind} dataset {suite.path or suite.name}")
    return list(windows[: suite.limit] if suite.limit else windows)
