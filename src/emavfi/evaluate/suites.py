"""Evaluation suites as data: which dataset, in which layout, with which options.

A suite is ``KIND:PATH`` (a source kind of ``emavfi.data.sources``) plus options (``limit``
and the source's own, e.g. ``gap`` for scene folders and videos). Presets name the standard test
sets by their folder under a data root; they resolve only when a root is given
(``--data-root``), so the installed package never depends on a particular machine's paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emavfi.errors import EmavfiError

KINDS = ("middlebury", "triplet", "vimeo", "scenes", "video")

# preset name -> (kind, folder relative to the data root)
PRESETS: dict[str, tuple[str, str]] = {
    "middlebury": ("middlebury", "middlebury"),
    "ucf101": ("triplet", "ucf101"),
    "vimeo90k": ("vimeo", "vimeo_triplet"),
}


@dataclass(frozen=True)
class Suite:
    """One dataset to evaluate on.

    Attributes:
        name: short label for tables (the preset name or the folder/file name).
        kind: a source kind (see ``KINDS``).
        path: the dataset's folder or video file.
        limit: evaluate at most this many windows (the first ones, in the source's order).
        options: extra keyword options for ``open_source`` (e.g. ``{"gap": 2}``).
    """

    name: str
    kind: str
    path: Path
    limit: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (recorded in the results so a run can be repeated)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "path": str(self.path),
            "limit": self.limit,
            "options": dict(self.options),
        }


def parse_suite(text: str, data_root: str | Path | None = None, limit: int | None = None) -> Suite:
    """A suite from ``KIND:PATH`` or a preset name (``middlebury``, ``ucf101``; needs ``data_root``).

    Unknown kinds, presets without a root and missing paths raise EmavfiError with one line.
    """
    if limit is not None and limit < 1:
        raise EmavfiError(f"--limit must be at least 1, got {limit}")
    kind, sep, rest = text.partition(":")
    if sep and kind in KINDS:
        path = Path(rest).expanduser()
        name = path.stem if kind == "video" else (path.name or str(path))
    elif not sep and text in PRESETS:
        if data_root is None:
            raise EmavfiError(
                f"dataset preset {text!r} needs --data-root (the folder that holds {PRESETS[text][1]}/)"
            )
        kind, folder = PRESETS[text]
        path, name = Path(data_root).expanduser() / folder, text
    elif sep and len(kind) > 1:
        raise EmavfiError(
            f"unknown dataset kind {kind!r} in {text!r}; known kinds: {', '.join(KINDS)}"
        )
    else:
        raise EmavfiError(
            f"dataset {text!r} is neither KIND:PATH (kinds: {', '.join(KINDS)}) nor a preset "
            f"({', '.join(PRESETS)})"
        )
    if not path.exists():
        raise EmavfiError(f"{kind} dataset not found: {path}")
    return Suite(name=name, kind=kind, path=path, limit=limit)


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
        raise EmavfiError(f"no samples found in {suite.kind} dataset {suite.path}")
    return list(windows[: suite.limit] if suite.limit else windows)
