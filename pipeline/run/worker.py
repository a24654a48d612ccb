"""What runs inside a Ray actor: render a page (or read its text), ask the model, return its result.

``PageWorker`` is the Ray Data callable class: Ray constructs it once per actor, so the model
(and the OCR engine, when needed) is loaded once per actor and then serves every page routed
to it.  ``pipeline.run.page.process_page`` is the per-page work as a plain function, testable
without Ray.
Whatever happens to a page, it comes back as exactly one ``PageResult`` with ``status`` ok or error.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from pipeline.config.settings import RunConfig
from pipeline.model.base import Backend, Enough, ModelResult, PageInput
from pipeline.results import PAGES_READ, TASK_KEYS, PageResult, unboxed
from pipeline.run.page import PageSteps, process_page
from pipeline.run.quarantine import QUARANTINED, STOPPED, StageGate, crash_folder, read_dumps

FAULT_CRASH_ENV = "EXTRACT_FAULT_CRASH_ON"
FAULT_CRASH_SIGNAL_ENV = "EXTRACT_FAULT_CRASH_SIGNAL"  # test aid: that page raises this signal (ILL) instead
FAULT_START_SIGNAL_ENV = "EXTRACT_FAULT_START_SIGNAL"  # test aid: every worker raises it while loading
FAULT_SLOW_READ_ENV = "EXTRACT_FAULT_SLOW_READ_S"  # test aid: every page's reading takes this long


class PageWorker:
    """Ray Data actor UDF: one model per actor, one row per page.

    Ray Data runs two calls at once in each actor (``ray_pool.CONCURRENT_PAGES``): while one page is in
    the model, the next one is rendered (or OCR'd) and waits, and a page waiting for the API
    adjudicator does not hold the model.  Reading is one page at a time (a lock: PyMuPDF is not
    to be used from two threads at once) and inference runs on one dedicated thread: llama.cpp's
    OpenMP keeps a thread team per calling thread, and alternating callers cost 19 % of the
    pages/s with 2 threads (measured).  A page that was present when a worker died runs alone
    (``pipeline.run.quarantine``), so only the page that kills the worker is quarantined.
    """

    def __init__(self, config_json: str, schema_raw: dict[str, Any], model_sha256: str,
                 budget_keeper: Any = None, crash_counter: Any = None) -> None:
        from pipeline.adjudicate.setup import RemoteBudget, make_adjudicator
        from pipeline.model.llama import make_backend

        self.crash_counter = crash_counter
        self._read_lock = threading.Lock()
        self._gate = StageGate()
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

        self.cfg = RunConfig.model_validate_json(config_json)
        self.stopped = self._born()
        if self.stopped:  # deaths while loading: do not load again, answer every page with the reason
            return
        self.backend = make_backend(self.cfg, schema_raw, model_sha256)
        adj = self.cfg.adjudication
        adjudicator = make_adjudicator(adj, self.backend.schema, RemoteBudget(budget_keeper, adj.budget_usd)) \
            if budget_keeper is not None else None
        # through the instance, so a test that swaps a section on the worker is heard
        self.steps = PageSteps.from_config(self.cfg, schema_raw, adjudicator,
                                           reading=lambda task: self._reading(task),
                                           infer=lambda *args: self._infer(*args))
        if crash_counter is not None:
            import ray

            ray.get(crash_counter.ready.remote())

    def _born(self) -> str | None:
        """Leave a crash dump behind if this process dies of a signal, and hear whether earlier
        workers' deaths already stopped the run (their dumps say of what)."""
        folder = crash_folder(self.cfg.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        self._dump = open(folder / f"worker-{os.getpid()}-{time.time_ns()}.log", "w")  # noqa: SIM115
        faulthandler.enable(file=self._dump, all_threads=True)
        stopped = None
        if self.crash_counter is not None:
            import ray

            stopped = ray.get(self.crash_counter.birth.remote(read_dumps(folder, Path(self._dump.name))))
        fault = os.environ.get(FAULT_START_SIGNAL_ENV)
        if fault and not stopped:
            signal.raise_signal(signal.Signals[f"SIG{fault}"])
        return stopped

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        rows: list[dict[str, Any]] = []
        for i in range(len(batch["source_path"])):
            task = {k: unboxed(batch[k][i]) for k in TASK_KEYS}
            task[PAGES_READ] = int(unboxed(batch[PAGES_READ][i])) if PAGES_READ in batch else 1
            crashes = 0 if self.stopped else self._crashes(task)
            stopped = self.stopped or (self._suspect(task) if crashes else None)
            if stopped:
                result = PageResult.failed(task, STOPPED + stopped)
            elif crashes >= self.cfg.max_page_crashes:
                result = PageResult.failed(task, f"{QUARANTINED}the worker died {crashes} times on this page")
            else:
                # A page present at a crash is a suspect: alone, a crash is its own and no one else's.
                with self._gate.alone(_key(task)) if crashes else nullcontext():
                    result = process_page(self.backend, task, self.steps)
                if result.completion_tokens:  # the model answered: proof the runtime works (a skipped page is not)
                    self._finished(task)
            rows.extend(r.to_row() for r in [result, *result.companions(task[PAGES_READ])])
        return {k: [r[k] for r in rows] for k in rows[0]} if rows else {}

    def _crashes(self, task: dict[str, Any]) -> int:
        """How many worker deaths the page was inside a stage for (0 without a counter).

        Ray restarts a dead actor and retries its task, so a page that crashes llama.cpp
        (or the renderer) would loop forever; the counter outlives the actors and turns the
        page into an error row after ``max_page_crashes`` crashes (see ``pipeline.run.quarantine``).
        """
        if self.crash_counter is None:
            return 0
        import ray

        return int(ray.get(self.crash_counter.crashes.remote(_key(task))))

    def _suspect(self, task: dict[str, Any]) -> str | None:
        """The stop reason when this page's death is one of several pages' in a row."""
        import ray

        return ray.get(self.crash_counter.suspect.remote(_key(task)))  # type: ignore[union-attr]

    def _finished(self, task: dict[str, Any]) -> None:
        if self.crash_counter is not None:
            import ray

            ray.get(self.crash_counter.finished.remote(_key(task)))

    @contextmanager
    def _reading(self, task: dict[str, Any]) -> Iterator[None]:
        with self._gate.stage(_key(task)), self._read_lock, self._crash_guard(task):
            time.sleep(float(os.environ.get(FAULT_SLOW_READ_ENV) or 0))
            yield

    def _infer(self, backend: Backend, task: dict[str, Any], page: PageInput, enough: Enough | None) -> ModelResult:
        # The gate is passed here, before the page is queued: a page held back while a suspect
        # runs alone must not sit on the model thread that the suspect needs.
        with self._gate.stage(_key(task)):
            return self._model_thread.submit(self._on_model_thread, backend, task, page, enough).result()

    def _on_model_thread(self, backend: Backend, task: dict[str, Any], page: PageInput,
                         enough: Enough | None) -> ModelResult:
        # The guard starts here, not while the page waits for the model thread: a page queued
        # behind one that kills the worker is not to blame.
        with self._crash_guard(task):
            crash_on = os.environ.get(FAULT_CRASH_ENV)  # test aid: simulate a page that kills llama.cpp
            if crash_on and crash_on in task["source_path"]:
                fault = os.environ.get(FAULT_CRASH_SIGNAL_ENV)
                if fault:
                    signal.raise_signal(signal.Signals[f"SIG{fault}"])
                os._exit(70)
            return backend.extract(page, enough)  # enough: settles the greedy answer here, between draws

    @contextmanager
    def _crash_guard(self, task: dict[str, Any]) -> Iterator[None]:
        """Charge a crash to the page only while it is inside a stage: a page that was merely
        waiting (at the gate, for the read lock or the model thread) when another page killed the
        worker is not to blame."""
        if self.crash_counter is None:
            yield
            return
        import ray

        ray.get(self.crash_counter.enter.remote(_key(task)))
        try:
            yield
        finally:
            ray.get(self.crash_counter.leave.remote(_key(task)))


def _key(task: dict[str, Any]) -> str:
    return f"{task['source_sha256']}:{task['page_number']}"


