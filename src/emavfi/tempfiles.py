"""Temporary names next to an output, so that a complete file appears by one atomic rename.

A temporary name carries the writing process's id: ``.NAME.partial-PID-TOKEN.SUFFIX``. A process
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
from pathlib import Path

log = logging.getLogger(__name__)


def temp_path(path: Path, suffix: str = "") -> Path:
    """A fresh hidden name in ``path``'s folder (same file system, so the rename is atomic)."""
    token = secrets.token_hex(4)
    return path.resolve().parent / f".{path.stem}.partial-{os.getpid()}-{token}{suffix}"


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
