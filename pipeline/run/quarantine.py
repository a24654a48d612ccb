"""Blame for a dead worker: which page killed it, so that page (and only it) ends as an error row.

A worker holds two pages at once (one being read, one in the model).  When the process dies,
every page that was inside a stage is a suspect; the counter below remembers them across the
restart.  A suspect is then processed *alone* (``StageGate.alone``): no other page of that
worker enters a stage while it runs, so a crash then is its own.  An innocent page that was
merely being rendered beside a poison page is charged once as a suspect, passes alone, and is
never quarantined; the poison page dies alone and reaches ``max_page_crashes``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CrashCounter:
    """Ray actor (driver-owned, survives worker deaths): stages each page entered and never left.

    A stage entered and not left means the worker died inside it, so that count is the number
    of crashes the page was present for.
    """

    def __init__(self) -> None:
        self.open: dict[str, int] = {}

    def enter(self, key: str) -> None:
        self.open[key] = self.open.get(key, 0) + 1

    def leave(self, key: str) -> None:
        self.open[key] -= 1

    def crashes(self, key: str) -> int:
        return self.open.get(key, 0)


class StageGate:
    """Lets a worker's pages share its stages, except while a suspect page runs alone.

    Keyed by page, not by thread: a page's inference runs on the worker's model thread, and
    that stage belongs to the page that is alone as much as its reading does.  A suspect
    waiting to run alone holds new pages back, so the pages in flight drain and it cannot starve.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._alone: str | None = None
        self._waiting_alone = 0

    @contextmanager
    def stage(self, key: str) -> Iterator[None]:
        """A stage of page ``key``: waits while another page runs alone."""
        with self._cond:
            own = self._alone == key
            if not own:
                self._cond.wait_for(lambda: self._alone is None and not self._waiting_alone)
                self._active += 1
        try:
            yield
        finally:
            if not own:
                with self._cond:
                    self._active -= 1
                    self._cond.notify_all()

    @contextmanager
    def alone(self, key: str) -> Iterator[None]:
        """The whole of page ``key`` with no other page in any stage."""
        with self._cond:
            self._waiting_alone += 1
            self._cond.wait_for(lambda: self._alone is None and self._active == 0)
            self._waiting_alone -= 1
            self._alone = key
        try:
            yield
        finally:
            with self._cond:
                self._alone = None
                self._cond.notify_all()
