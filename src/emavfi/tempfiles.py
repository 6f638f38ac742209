"""Atomic writes: an output appears complete, by one rename of a temporary file next to it.

``atomic_path`` is the one way the package writes a file atomically (``atomic_write_bytes`` and
``atomic_write_text`` for data in memory); an error mid-write removes the temporary file and
leaves the output as it was. A temporary name carries the writing process's id: ``.NAME.partial-PID-TOKEN.SUFFIX``. A process
killed outright (SIGKILL, power loss) cannot remove its partial file; the next writer of the same
output removes every partial whose process is gone (``remove_stale_temps``), and leaves those of
live processes alone.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emavfi.errors import EmavfiError

log = logging.getLogger(__name__)


def temp_path(path: Path, suffix: str = "") -> Path:
    """A fresh hidden name in ``path``'s folder (same file system, so the rename is atomic)."""
    token = secrets.token_hex(4)
    return path.resolve().parent / f".{path.stem}.partial-{os.getpid()}-{token}{suffix}"


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary file name next to ``path`` for the block to write; renamed onto ``path`` when
    the block ends, removed when it raises. ``suffix``: for writers that choose a format by it."""
    path = Path(path)
    tmp = temp_path(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; EmavfiError when its folder cannot be written."""
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            handle = open(tmp, "xb")  # noqa: SIM115 - closed below; the error names the folder
        except OSError as exc:
            raise EmavfiError(f"cannot write to {path.parent}: {exc.strerror}") from exc
        with handle:
            handle.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, as ``atomic_write_bytes``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the partial files and folders of ``path`` left by processes that no longer run."""
    folder = path.resolve().parent
    pattern = re.compile(rf"\.{re.escape(path.stem)}\.partial-(\d+)-[0-9a-f]+")
    removed = []
    if not folder.is_dir():
        return removed
    for candidate in folder.iterdir():
        match = pattern.match(candidate.name)
        if match is None or _running(int(match.group(1))):
            continue
        if candidate.is_dir() and not candidate.is_symlink():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            candidate.unlink(missing_ok=True)
        removed.append(candidate)
        log.info("removed %s, left by an earlier run that was killed", candidate.name)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
