"""Signals as the CLI handles them: SIGINT, SIGTERM and SIGHUP end a command cleanly.

The first signal raises :class:`Interrupted` in the main thread, so every ``finally``
and every atomic write (:mod:`hermes_deploy.atomic`) unwinds: worker threads are
joined, temporaries are removed, finished outputs stay. Further signals while that
cleanup runs are ignored - a second Ctrl-C must not cut the cleanup short and leave
the partial files it exists to remove. ``kill -9`` cannot be caught; the next run into
the same folder removes what such a run left (:func:`hermes_deploy.atomic.sweep`).
"""

from __future__ import annotations

import signal
import threading

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A handled signal arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


_state = {"interrupting": False}


def _handler(signum, frame) -> None:
    if _state["interrupting"]:
        return  # cleanup of the first one is running
    _state["interrupting"] = True
    raise Interrupted(signum)


def install() -> None:
    """Install the handlers (main thread only; elsewhere Python forbids it)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in HANDLED:
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue  # e.g. nohup: the user asked for this signal to be ignored
        signal.signal(signum, _handler)
