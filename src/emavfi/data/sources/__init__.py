"""Data sources: one module per dataset layout, one entry point.

``open_source(kind, path, **options)`` lists the `FrameWindow`s of a dataset and
``load_frame(ref)`` decodes any frame reference to ``HxWx3`` uint8 RGB. Kinds and options:

- ``middlebury``: ``other-data/<Seq>/frame10.png, frame11.png`` + ``other-gt-interp`` (t = 0.5).
- ``triplet``: ``<id>/{frame_00,frame_01_gt,frame_02}`` or ``<id>/{im1,im2,im3}`` (t = 0.5).
- ``vimeo``: Vimeo90K ``sequences/`` + list file; options ``list_file``, ``gap``, ``stride``.
- ``scenes``: ``<root>/<scene>/<numbered frames>``; options ``gap`` (2), ``stride`` (1).
- ``video``: a video file; options ``gap`` (2), ``stride`` (1), ``threshold`` (27.0),
  ``min_scene_len`` (3) for the scene-cut detector.
- ``rendered``: no path; seeded large-motion scenes with exact ground truth, rendered on the
  CPU; options ``count`` (48), ``size`` (256), ``min_motion`` (16), ``max_motion`` (64),
  ``timestep`` (0.5), ``seed`` (11).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from emavfi.data.sources.base import (
    FrameRef,
    FrameWindow,
    RenderedFrameRef,
    VideoFrameRef,
    list_images,
    load_frame,
    read_image,
)
from emavfi.data.sources.middlebury import open_middlebury
from emavfi.data.sources.rendered import open_rendered
from emavfi.data.sources.scenes import open_scenes
from emavfi.data.sources.triplet import open_triplet
from emavfi.data.sources.video import open_video
from emavfi.data.sources.vimeo import open_vimeo
from emavfi.errors import EmavfiError

SOURCE_KINDS: dict[str, Callable[..., list[FrameWindow]]] = {
    "middlebury": open_middlebury,
    "triplet": open_triplet,
    "vimeo": open_vimeo,
    "scenes": open_scenes,
    "video": open_video,
    "rendered": open_rendered,
}

__all__ = [
    "SOURCE_KINDS",
    "FrameRef",
    "FrameWindow",
    "RenderedFrameRef",
    "VideoFrameRef",
    "list_images",
    "load_frame",
    "open_source",
    "read_image",
]


def open_source(kind: str, path: str | Path | None, **options) -> list[FrameWindow]:
    """The windows of the dataset at ``path`` in layout ``kind`` (see the module docstring);
    ``path`` is None for the kinds that read no files (``rendered``).

    Unknown kinds or options, missing paths (or a path given to ``rendered``) and empty datasets
    raise EmavfiError.
    """
    opener = SOURCE_KINDS.get(kind)
    if opener is None:
        raise EmavfiError(f"unknown source kind {kind!r}; known: {', '.join(SOURCE_KINDS)}")
    parameters = inspect.signature(opener).parameters
    accepted = [name for name in parameters if name != "path"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) or "none"
        raise EmavfiError(
            f"unknown option(s) {', '.join(unknown)} for source {kind!r} (allowed: {allowed})"
        )
    if "path" not in parameters:
        if path is not None:
            raise EmavfiError(f"source {kind!r} reads no files, but was given the path {path}")
        return opener(**options)
    if path is None or not Path(path).exists():
        raise EmavfiError(f"{kind} source not found: {path}")
    return opener(Path(path), **options)
