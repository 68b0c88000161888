"""What the fault and robustness tests share: the real CLI in a subprocess, small real
images, a tiny filesystem that fills up, and the check of an output folder."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hermes_deploy.quality.photos import load_photo


def default_signals() -> None:
    """In the child before exec: SIGINT, SIGTERM and SIGHUP at their defaults, as in a
    terminal. A suite started under ``nohup`` (or as a background job) would otherwise
    pass on an ignored SIGHUP (SIGINT), which the CLI rightly leaves ignored."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def cli(*args, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """``hermes-export ARGS`` as a user runs it; ``env`` is added to the environment."""
    full = {**os.environ, **(env or {})}
    full.pop("HERMES_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "hermes_deploy.cli.app", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=full,
                          preexec_fn=default_signals)


def photo_u8(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A (h, w, 3) uint8 crop of a real photograph (tiled when larger than it)."""
    photo = load_photo("coffee")
    reps = (-(-h // photo.shape[0]) + 1, -(-w // photo.shape[1]) + 1, 1)
    big = np.tile(photo, reps)
    y, x = (seed * 37) % photo.shape[0], (seed * 53) % photo.shape[1]
    return (big[y:y + h, x:x + w] * 255 + 0.5).astype(np.uint8)


def write_images(folder: Path, names_sizes: dict[str, tuple[int, int]]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, (name, (h, w)) in enumerate(names_sizes.items()):
        Image.fromarray(photo_u8(h, w, i)).save(folder / name, quality=95)
        out[name] = folder / name
    return out


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def check_outputs(out: Path, sources: dict[str, Path], scale: int = 2,
                  allow_hidden: bool = False) -> list[str]:
    """Every image in ``out`` decodes completely at ``scale`` x its source's size; nothing
    temporary is there (unless ``allow_hidden``). Returns the image names found."""
    by_stem = {p.stem: p for p in sources.values()}
    names = []
    for p in sorted(out.iterdir()):
        if p.name.startswith(".") or p.suffix == ".json" or p.is_dir():
            continue
        assert p.stem in by_stem, f"unexpected file {p.name}"
        with Image.open(by_stem[p.stem]) as src:
            want = (src.size[0] * scale, src.size[1] * scale)
        with Image.open(p) as im:
            im.load()  # raises on a truncated file
            assert im.size == want, (p.name, im.size, want)
        names.append(p.name)
    if not allow_hidden:
        assert hidden(out) == [], hidden(out)
    return names


def one_error_line(stderr: str) -> str:
    """The single ``hermes-export:`` line of a failed run (and no traceback)."""
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("hermes-export:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def tiny_fs(tmp_path):
    """A factory of real, small tmpfs filesystems (``make(size_kb) -> Path``), unmounted
    after the test. Skips where mounting is not allowed (no root / CAP_SYS_ADMIN)."""
    mounted: list[Path] = []

    def make(size_kb: int) -> Path:
        mnt = tmp_path / f"fs-{uuid.uuid4().hex[:6]}"
        mnt.mkdir()
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mnt)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip() or 'not root'}); the "
                        "full-disk tests need root or CAP_SYS_ADMIN")
        mounted.append(mnt)
        return mnt

    yield make
    for mnt in mounted:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(folder: Path) -> None:
    """Fill the filesystem of ``folder`` to the last byte."""
    for name, block in (("filler.bin", 4096), ("filler-tail.bin", 1)):
        with contextlib.suppress(OSError), open(folder / name, "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * block)
