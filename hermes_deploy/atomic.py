"""Atomic file output: write to a temporary sibling, rename into place on success.

A reader never sees a partial file: after a failure (full disk, interrupt, exception)
the destination is either absent or still the previous complete version, and the
temporary file is removed.

A process that is killed outright (``kill -9``, power loss) cannot remove its
temporaries, so every temporary is tagged with the run that made it and the next run
that writes into the same folder removes them - but only those of runs that are over:

* A run (process) holds an exclusive ``flock`` on ``.hermes-run-<run>.lock`` in each
  folder while it has temporaries there; the last one published or discarded removes
  the lock file. The kernel drops the lock when the process dies, however it dies.
* Temporaries are named ``.<name>.hermes-<run>.<random><suffix>``.
* :func:`sweep` removes the temporaries (and the lock file) of every run whose lock
  it can take: those runs are dead. A live concurrent run keeps its lock, so its
  temporaries are left alone. A lock file becomes visible only after it is locked
  (it is created under another name, locked, then renamed), so a starting run is never
  mistaken for a dead one.

Only names of exactly this pattern are ever removed. Where ``fcntl`` is missing (not
POSIX) there are no locks and nothing is swept.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

from . import faults
from .errors import OutputError

if os.name == "posix":
    import fcntl
else:  # pragma: no cover - elsewhere nothing is locked or swept
    fcntl = None  # type: ignore[assignment]

_TAG = re.compile(r"\.hermes-(\d+-[0-9a-f]{8})\.")
_LOCK = re.compile(r"^\.hermes-run-(\d+-[0-9a-f]{8})\.lock(\.new)?$")
_NEW_LOCK_GRACE_S = 60.0  # a ".lock.new" younger than this may belong to a starting run


def _new_tag() -> str:
    return f"{os.getpid()}-{secrets.token_hex(4)}"


_GUARD = threading.RLock()
_HELD: dict[Path, tuple[int, str]] = {}  # folder -> (fd of our lock there, its tag)
_LIVE: dict[Path, Path] = {}  # this process's temporaries -> their folder
_SWEPT: set[Path] = set()  # folders swept by this process (once is enough)


def _after_fork() -> None:  # a child is a run of its own
    global _GUARD
    _GUARD = threading.RLock()
    _HELD.clear()  # the parent's lock fds stay open in the child; they are the parent's
    _LIVE.clear()
    _SWEPT.clear()


os.register_at_fork(after_in_child=_after_fork)


def _claim(folder: Path) -> str:
    """Sweep ``folder`` once, hold a lock in it (see module doc) and return the tag of
    the temporaries made under that lock. The lock is held while this process has
    temporaries in ``folder``; each new hold gets a new tag, so a sweeper that judged an
    earlier, released hold dead can never touch the temporaries of a later one.
    Call with ``_GUARD`` held."""
    if folder in _HELD:
        return _HELD[folder][1]
    tag = _new_tag()
    if fcntl is None:
        return tag
    if folder not in _SWEPT:
        sweep(folder)
    lock = folder / f".hermes-run-{tag}.lock"
    new = folder / f".hermes-run-{tag}.lock.new"
    try:
        fd = os.open(new, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except OSError:
        return tag  # an unwritable folder: writing the temporary itself will say why
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(new, lock)
    except OSError:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(new)
        return tag
    _HELD[folder] = (fd, tag)
    return tag


def _forget(tmp: Path) -> None:
    """``tmp`` is gone (published or removed); the last one of a folder drops the lock."""
    with _GUARD:
        folder = _LIVE.pop(tmp, None)
        if folder is not None:
            _release_unused(folder)


def _release_unused(folder: Path) -> None:
    """Drop our lock in ``folder`` if no temporary of ours is left there (``_GUARD`` held)."""
    if folder not in _HELD or folder in _LIVE.values():
        return
    fd, tag = _HELD.pop(folder)
    with contextlib.suppress(OSError):
        os.unlink(folder / f".hermes-run-{tag}.lock")
    with contextlib.suppress(OSError):
        os.close(fd)


def _dead(lock: Path, is_new: bool) -> bool:
    """True when no live process holds ``lock``."""
    try:
        if is_new and time.time() - lock.stat().st_mtime < _NEW_LOCK_GRACE_S:
            return False
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: that run is alive
    finally:
        os.close(fd)
    return True


def sweep(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of dead runs in ``folder``; returns what was removed."""
    folder = Path(os.path.abspath(folder))
    if fcntl is None:
        return []
    with _GUARD:
        _SWEPT.add(folder)
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith(".") and ".hermes-" in e.name]
    except OSError:
        return []
    with _GUARD:
        ours = {tag for _, tag in _HELD.values()}
    verdict: dict[str, bool] = {}

    def dead(tag: str) -> bool:
        # asked of the lock's own path, not of the listing: a listing taken while another
        # run starts may show its temporary and miss its lock
        if tag not in verdict:
            lock = folder / f".hermes-run-{tag}.lock"
            new = folder / f".hermes-run-{tag}.lock.new"
            # ".lock.new" first: a starting run renames it to ".lock" - looked at in the
            # other order, a rename in between would hide both
            verdict[tag] = tag not in ours and all(
                not p.exists() or _dead(p, p is new) for p in (new, lock))
        return verdict[tag]

    removed: list[Path] = []
    for name in names:
        m = _LOCK.match(name) or _TAG.search(name)
        if m is None or not dead(m.group(1)):
            continue
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
            if not _LOCK.match(name):
                removed.append(folder / name)
    return removed


def temp_file(path: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """Create an empty temporary file beside ``path``, tagged with this run (module doc).
    It must end in :func:`publish` or :func:`discard`."""
    path = Path(path)
    folder = Path(os.path.abspath(path.parent))
    with _GUARD:
        tag = _claim(folder)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.hermes-{tag}.", suffix=suffix,
                                       dir=folder)
        except BaseException:
            _release_unused(folder)
            raise
        os.close(fd)
        _LIVE[Path(tmp)] = folder
    return Path(tmp)


def discard_leftovers() -> list[Path]:
    """Remove every temporary this process made and neither published nor discarded, and
    drop its locks with them: the last step of a run that is ending (an interrupt can land
    in the window where a worker thread has made a temporary that no cleanup knows of
    yet), so that nothing of it stays for :func:`sweep` to find."""
    with _GUARD:
        left = list(_LIVE)
    for tmp in left:
        discard(tmp)
    return left


def discard(tmp: Path) -> None:
    """Remove a temporary of :func:`temp_file` (no error if it is already gone)."""
    Path(tmp).unlink(missing_ok=True)
    _forget(Path(os.path.abspath(tmp)))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it replaces ``path`` when the block ends."""
    with atomic_paths(path) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[tuple[Path, ...]]:
    """Temporaries for several files that belong together (a graph and its companion);
    all are renamed into place only when the block ends without an error."""
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            temps.append(temp_file(target))
        yield tuple(temps)
        faults.point("atomic-publish")
        for tmp, target in zip(temps, targets):
            publish(tmp, target)
    except BaseException:
        for tmp in temps:
            discard(tmp)  # those already published are gone: a no-op
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
    _forget(Path(os.path.abspath(tmp)))


def _full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def write_error(path: Path, exc: OSError, what: str | None = None) -> OutputError:
    """One line for an OSError while writing ``path`` (``what``: how to name the file)."""
    name = f"{what} {path.name}" if what else path.name
    if exc.errno == errno.ENOSPC or (exc.errno is None and _full(path.parent)):
        # (tifffile reports a short write without an errno: ask the filesystem)
        return OutputError(f"{name}: disk full while writing; free space or choose another "
                           "output folder")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"cannot write {name} to '{path.parent}' (permission denied); choose "
                           "a writable output folder with -o")
    return OutputError(f"{name}: cannot write ({exc.strerror or exc}); check the output "
                       "folder")


def write_text(path: str | os.PathLike, text: str, what: str | None = None) -> Path:
    """Write a small text file atomically; a failure is one :class:`OutputError` line."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    except OSError as exc:
        raise write_error(path, exc, what) from None
    return path
