"""Which skips CI may take, and the one line that lists them.

CI (``CI=true``) installs every tool the suite uses (``scripts/install-test-deps.sh``), so
a test skipped there for a missing tool hides a broken install: the conftest turns such a
skip into a failure. What no CI machine has - a GPU, full TensorRT and its C++ headers
(not redistributable), a CPU feature the machine lacks - stays a skip, and
:func:`summary_line` lists those at the end of the run.

A skip counts as beyond CI when its reason matches one of :data:`BEYOND_CI`; the tests
word their reasons to match (``"this CPU lacks ..."``, ``"... CUDA GPU ..."``).
"""

from __future__ import annotations

import os
import re
from collections import Counter

#: (what CI cannot provide, pattern its skip reasons match)
BEYOND_CI: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a CUDA GPU", re.compile(r"CUDA GPU|CUDA device")),
    ("full TensorRT and its C++ headers", re.compile(r"TensorRT's (C\+\+ )?headers|tensorrt is installed here")),
    ("a CPU feature", re.compile(r"^this CPU lacks")),
)


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def reason_of(longrepr) -> str:
    """The reason pytest stored for a skip (``(path, line, 'Skipped: why')``)."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
    else:
        text = str(longrepr)
    return text.removeprefix("Skipped: ").strip()


def beyond_ci(reason: str) -> str | None:
    """The requirement CI cannot provide that this skip reason names, or None."""
    for what, pattern in BEYOND_CI:
        if pattern.search(reason):
            return what
    return None


def summary_line(reasons: list[str]) -> str:
    """``not run here: N tests need a CUDA GPU (n), ...`` - one line, empty if none."""
    counts = Counter(beyond_ci(r) or "a tool that is not installed" for r in reasons)
    if not counts:
        return "not run here: nothing (every collected test ran)"
    parts = [f"{what} ({n})" for what, n in sorted(counts.items())]
    return f"not run here: {sum(counts.values())} tests need " + ", ".join(parts)
