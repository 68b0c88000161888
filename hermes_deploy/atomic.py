"""Atomic file output: write to a temporary sibling, rename into place on success.

A reader never sees a partial file: after a failure (full disk, interrupt, exception)
the destination is either absent or still the previous complete version, and the
temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it replaces ``path`` when the block ends."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        publish(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once: os.umask can only be read by setting it


def publish(tmp: Path, path: Path) -> None:
    """Give ``tmp`` ordinary file permissions (mkstemp makes it private) and rename it."""
    with contextlib.suppress(OSError):
        os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)
