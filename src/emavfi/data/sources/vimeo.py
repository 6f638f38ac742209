"""The Vimeo90K layout (Xue et al., IJCV 2019): ``<root>/sequences/<a>/<b>/im1..im7.png`` and a
list file (``tri_testlist.txt``, ``sep_trainlist.txt``, ...) of ``<a>/<b>`` lines.

Triplets (im1..im3) give im1, im3 -> im2 at t = 0.5. Septuplets (im1..im7) give, with the
default ``gap=6``, inputs im1, im7 and targets im2..im6 at i/6; ``gap=2`` gives the five
triplets inside instead (any gap from 2 to 6 works, ``stride`` sets the step between windows).
"""

from __future__ import annotations

from pathlib import Path

from emavfi.data.sources.base import FrameWindow, gap_windows, require_dir
from emavfi.errors import EmavfiError

LIST_FILES = ("tri_testlist.txt", "sep_testlist.txt", "tri_trainlist.txt", "sep_trainlist.txt")


def _list_file(root: Path, list_name: str | None) -> Path:
    if list_name:
        candidate = Path(list_name) if Path(list_name).is_absolute() else root / list_name
        if not candidate.is_file():
            raise EmavfiError(f"Vimeo90K list file not found: {candidate}")
        return candidate
    for name in LIST_FILES:
        if (root / name).is_file():
            return root / name
    raise EmavfiError(f"no Vimeo90K list file ({', '.join(LIST_FILES)}) in {root}")


def _sequence_frames(folder: Path) -> list[Path]:
    frames = []
    for index in range(1, 8):
        frame = folder / f"im{index}.png"
        if not frame.is_file():
            break
        frames.append(frame)
    if len(frames) not in (3, 7):
        raise EmavfiError(f"Vimeo90K sequence needs im1..im3 or im1..im7: {folder}")
    return frames


def open_vimeo(
    path: Path, list_file: str | None = None, gap: int | None = None, stride: int = 1
) -> list[FrameWindow]:
    """Windows of the sequences named in the list file (see the module docstring)."""
    root = require_dir(path, "Vimeo90K")
    sequences = require_dir(root / "sequences", "Vimeo90K sequences")
    list_path = _list_file(root, list_file)
    windows: list[FrameWindow] = []
    for line in list_path.read_text().splitlines():
        entry = line.strip()
        if not entry:
            continue
        folder = sequences / entry
        if not folder.is_dir():
            raise EmavfiError(f"Vimeo90K sequence listed in {list_path.name} not found: {folder}")
        frames = _sequence_frames(folder)
        window_gap = gap if gap is not None else len(frames) - 1
        if window_gap > len(frames) - 1:
            raise EmavfiError(
                f"gap {window_gap} is too wide for the {len(frames)} frames of {folder}"
            )
        windows += gap_windows(f"{root.name}/{entry}", frames, window_gap, stride)
    if not windows:
        raise EmavfiError(f"Vimeo90K list file names no sequence: {list_path}")
    return windows
