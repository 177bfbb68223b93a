"""Files written whole or not at all, with their mode set whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner only (0600), replacing ``path`` atomically."""
    atomic_write(path, data, 0o600)


def write_public(path: Path, data: bytes) -> None:
    atomic_write(path, data, 0o644)


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_secret(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600): a snippet with a password in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode(), 0o600)
