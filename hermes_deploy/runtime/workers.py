"""Worker threads and the bounded queues between them, as the runtime's pipelines use
them (the tiled image pipeline and the video path).

* :func:`put` / :func:`get` give up when the ``stop`` event is set, so no thread waits
  forever on a queue whose other end has failed; :data:`END` closes a queue.
* :class:`Worker` says when it has finished in a way an interrupt cannot corrupt: on
  Python 3.11 a ``join()`` cut short by a signal can mark a thread that is still running
  as stopped, so ``is_alive()`` cannot be trusted after an interrupt.
* :func:`feed` runs an iterator into a queue the way every producer thread must: each
  item put (until ``stop``), a failure handed over and ``stop`` set, :data:`END` last.
* :func:`join_all` waits for every worker even if an interrupt lands meanwhile, then
  re-raises it: a writer cut off at interpreter exit would leave its temporaries behind.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable

END = object()


def put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put ``item``; False if ``stop`` was set first."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def get(q: queue.Queue, stop: threading.Event):
    """The next item, or :data:`END` once ``stop`` is set and the queue is empty."""
    while True:
        try:
            return q.get(timeout=0.05)
        except queue.Empty:
            if stop.is_set():
                return END


def feed(q: queue.Queue, items: Iterable, stop: threading.Event,
         errors: list[BaseException]) -> None:
    """Put every item of ``items`` into ``q``, then :data:`END`; an exception (from the
    iterator too) goes into ``errors`` and sets ``stop`` (see module doc)."""
    try:
        for item in items:
            if not put(q, item, stop):
                return
    except BaseException as exc:  # handed to the thread that reads ``errors``
        errors.append(exc)
        stop.set()
    finally:
        put(q, END, stop)


class Worker(threading.Thread):
    """A daemon thread with a ``finished`` event (see module doc)."""

    def __init__(self, target, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            self._work()
        finally:
            self.finished.set()


def join_all(workers: list[Worker], stop: threading.Event) -> None:
    """Wait for every worker, through interrupts (then re-raised; see module doc)."""
    pending: BaseException | None = None
    for w in workers:
        while not w.finished.is_set():
            try:
                w.finished.wait()
            except BaseException as exc:
                stop.set()
                pending = pending or exc
    if pending is not None:
        raise pending
