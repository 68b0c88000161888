"""The header every benchmark prints before its results: what was measured, where.

One block - the CPU (model name and the flags that matter for inference speed, from
:func:`hermes_deploy.cpu.describe_cpu`), the checkout's commit (``+dirty`` with
uncommitted changes, ``unknown`` outside git), the backend, precision and thread count
the script pinned, and the load average - so that a figure copied from a terminal
carries what it depends on. ``--json`` output carries the same fields under
``"header"``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def git_commit(root: Path) -> str:
    """``git rev-parse --short HEAD`` of ``root``, ``+dirty`` when the tree has changes
    (untracked files included); ``unknown`` outside a git checkout or without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=30)
        if head.returncode:
            return "unknown"
        status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True,
                                text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    dirty = status.returncode != 0 or bool(status.stdout.strip())
    return head.stdout.strip() + ("+dirty" if dirty else "")


def header(backend: str, precision: str, threads: int | str, **extra) -> dict:
    """The header's fields; ``extra`` (e.g. ``model=``, ``tile=``) is appended in order. The
    commit is that of the checkout ``hermes_deploy`` was imported from."""
    import hermes_deploy
    from hermes_deploy.cpu import describe_cpu

    # the checkout of the package actually imported (an installed copy may be another one)
    package_root = Path(hermes_deploy.__file__).resolve().parents[1]
    fields = {"script": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "cpu": describe_cpu(),
              "commit": git_commit(package_root), "backend": backend, "precision": precision,
              "threads": threads, "load_average": [round(v, 2) for v in os.getloadavg()]}
    fields.update(extra)
    return fields


def format_header(fields: dict) -> str:
    """The block as printed: one ``name: value`` line per field, then a blank line."""
    lines = []
    for key, value in fields.items():
        if key == "load_average":
            value = ", ".join(f"{v:.2f}" for v in value)
        lines.append(f"{key.replace('_', ' ') + ':':<14}{value}")
    return "\n".join(lines) + "\n"


def print_header(fields: dict) -> None:
    """Print the block to stdout, flushed, so that it comes before any result."""
    print(format_header(fields), flush=True)
