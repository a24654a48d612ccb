"""Blame for a dead worker: which page killed it, so that page (and only it) ends as an error row.

A worker holds two pages at once (one being read, one in the model).  When the process dies,
every page that was inside a stage is a suspect; the counter below remembers them across the
restart.  A suspect is then processed *alone* (``StageGate.alone``): no other page of that
worker enters a stage while it runs, so a crash then is its own.  An innocent page that was
merely being rendered beside a poison page is charged once as a suspect, passes alone, and is
never quarantined; the poison page dies alone and reaches ``max_page_crashes``.

The quarantine is for one page. When workers die on several different pages with no page
finished in between, or die while loading the model, the fault is the runtime or the machine
(a llama.cpp build the CPU refuses, memory): the run stops with the reason and every page stays
to do (``CrashCounter.systemic``).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.model.probe import describe_dump

QUARANTINED = "quarantined: "
STOPPED = "run stopped: "  # a worker's answer for a page it did not try: the driver stops the run
SYSTEMIC_PAGES = 3  # different pages present at worker deaths, none finished between: not a poison page
SYSTEMIC_START_DEATHS = 2  # workers dead while loading the model


def crash_folder(run_id: str) -> Path:
    """Where a run's workers leave their faulthandler dumps (on each node; removed with the run)."""
    return Path(tempfile.gettempdir()) / f"extract-{run_id}-crashes"


def read_dumps(folder: Path, own: Path) -> dict[str, tuple[float, str]]:
    """Other workers' dumps in ``folder`` that say something: name -> (when, one line)."""
    found: dict[str, tuple[float, str]] = {}
    for path in folder.glob("worker-*.log"):
        if path == own:
            continue
        try:
            text = path.read_text(errors="replace")
            when = path.stat().st_mtime
        except OSError:
            continue
        if text.strip():
            found[path.name] = (when, describe_dump(text))
    return found


class CrashCounter:
    """Ray actor (driver-owned, survives worker deaths): stages each page entered and never left,
    and the worker lives that began and died.

    A stage entered and not left means the worker died inside it, so that count is the number
    of crashes the page was present for.
    """

    def __init__(self, pool_size: int = 1) -> None:
        self.open: dict[str, int] = {}
        self.pool_size = pool_size
        self.streak: set[str] = set()  # pages present at a death since the last page finished
        self.born = 0
        self.loaded = 0
        self.dumps: dict[str, tuple[float, str]] = {}  # crash file -> (when, what faulthandler said)
        self.stopped: str | None = None

    def enter(self, key: str) -> None:
        self.open[key] = self.open.get(key, 0) + 1

    def leave(self, key: str) -> None:
        self.open[key] -= 1

    def crashes(self, key: str) -> int:
        return self.open.get(key, 0)

    def finished(self, key: str) -> None:
        """A page came back from the model: the runtime works, deaths so far were pages' own."""
        self.streak.clear()

    def suspect(self, key: str) -> str | None:
        """A page present at a death comes back: the stop reason once deaths span several pages."""
        self.streak.add(key)
        if len(self.streak) >= SYSTEMIC_PAGES and self.stopped is None:
            self.stopped = f"workers died on {len(self.streak)} different pages in a row{self._last_dump()}"
        return self.stopped

    def birth(self, dumps: dict[str, tuple[float, str]]) -> str | None:
        """A worker starts (the crash dumps it found beside it): the stop reason once workers die loading.

        Lives that never loaded their model, less those that may still be loading beside this one
        (the pool's other slots), died while loading.
        """
        self.dumps.update(dumps)
        died_loading = self.born - self.loaded - (self.pool_size - 1)
        self.born += 1
        if died_loading >= SYSTEMIC_START_DEATHS and self.stopped is None:
            self.stopped = f"{died_loading} workers died while loading the model{self._last_dump()}"
        return self.stopped

    def ready(self) -> None:
        self.loaded += 1

    def _last_dump(self) -> str:
        if not self.dumps:
            return " (no crash dump: the process was killed or exited)"
        return f"; the last: {max(self.dumps.values())[1]}"


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
