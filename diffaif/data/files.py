"""Atomic file writes: a crash mid-write never leaves a truncated file where a good one was.

Temporary files and folders are created private (``tempfile``: 0600 / 0700); what is renamed into
place gets the modes an ordinary ``open`` / ``mkdir`` would give under the process's umask.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable


def _umask() -> int:
    mask = os.umask(0)  # the only way to read the umask is to set it
    os.umask(mask)
    return mask


def normal_mode(directory: bool = False) -> int:
    """The mode ``open`` (0666) or ``mkdir`` (0777) would create under the current umask."""
    return (0o777 if directory else 0o666) & ~_umask()


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())  # the rename must not reach the disk before the data does
        os.chmod(tmp, normal_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """``atomic_write`` of UTF-8 text."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def check_writable(path: str | Path, directory: bool = False) -> None:
    """Raise a one-line ValueError naming ``path`` unless this process could create or replace it (a
    file, or with ``directory`` a folder): checked before any work whose result would go there."""
    path = Path(path)
    kind, other = ("directory", "file") if directory else ("file", "directory")
    if path.exists() and path.is_dir() != directory:
        raise ValueError(f"output {path} is a {other}, not a {kind}")
    target = path if directory and path.is_dir() else path.parent
    while not target.exists():
        target = target.parent
    if not target.is_dir():
        raise ValueError(f"output {path} cannot be created: {target} is a file")
    if not os.access(target, os.W_OK | os.X_OK):
        raise ValueError(f"output {path} cannot be written: no write permission in {target}")
