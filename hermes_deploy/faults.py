"""Named fault-injection points, for the fault tests (inert unless ``HERMES_FAULTS`` is set).

The fault tests send real signals to a real ``hermes-export`` process at exact moments
of a file's life (the writer thread starting, mid-tiles, just before the rename) that a
timer could only hit by luck. ``HERMES_FAULTS="point=action,..."`` names the points;
an action is a signal name (``SIGINT``, ``SIGTERM``, ``SIGKILL``), delivered to this
process with :func:`os.kill` - the same delivery as from outside, from whichever thread
reaches the point - or ``pause:<path>``, which waits until ``<path>`` exists (a test
holding a run mid-file). Each planned point fires once per process; ``name#n`` fires at
the n-th time the point is reached.
"""

from __future__ import annotations

import os
import signal
import time

_PLAN = dict(item.split("=", 1) for item in os.environ.get("HERMES_FAULTS", "").split(",")
             if "=" in item)


_SEEN: dict[str, int] = {}


def point(name: str) -> None:
    """Reach the fault point ``name``; does nothing unless a test planned a fault there
    (``name`` fires the first time, ``name#3`` the third)."""
    if not _PLAN:
        return
    _SEEN[name] = _SEEN.get(name, 0) + 1
    key = name if name in _PLAN else f"{name}#{_SEEN[name]}"
    if key not in _PLAN:
        return
    action = _PLAN.pop(key)
    if action.startswith("pause:"):
        release = action[len("pause:"):]
        while not os.path.exists(release):
            time.sleep(0.02)
        return
    os.kill(os.getpid(), getattr(signal, action))
    time.sleep(0.5)  # let the main thread take the signal here, not at a later point
