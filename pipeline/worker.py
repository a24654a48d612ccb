"""What runs inside a Ray actor: render a page (or read its text), ask the model, return a row.

``PageWorker`` is the Ray Data callable class: Ray constructs it once per actor, so the model
(and the OCR engine, when needed) is loaded once per actor and then serves every page routed
to it.  ``process_page`` is the per-page work as a plain function, testable without Ray.
Whatever happens to a page, it comes back as exactly one row with ``status`` ok or error.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from pipeline.adjudicate.base import AdjudicationRequest, Adjudicator
from pipeline.config import RunConfig
from pipeline.merge import open_disputes
from pipeline.model.base import Backend, ModelResult, PageInput
from pipeline.quarantine import StageGate
from pipeline.render import RenderError, page_text, render_page
from pipeline.rules import WHOLE_DOCUMENT_KINDS, check_rules, rule_failures
from pipeline.schema import compile_schema
from pipeline.textlayer import OcrEngine, has_usable_text

TASK_KEYS = ("source_path", "source_sha256", "page_number", "page_count")
FAULT_CRASH_ENV = "EXTRACT_FAULT_CRASH_ON"
FAULT_SLOW_READ_ENV = "EXTRACT_FAULT_SLOW_READ_S"  # test aid: every page's reading takes this long


class LazyOcr:
    """Loads rapidocr on the first page that needs it: most PDFs never do."""

    def __init__(self) -> None:
        self._engine: OcrEngine | None = None

    def text(self, png: bytes) -> str:
        if self._engine is None:
            self._engine = OcrEngine()
        return self._engine.text(png)


def read_page(backend: Backend, task: dict[str, Any], dpi: int, max_pixels: int,
              ocr: LazyOcr) -> tuple[PageInput, str]:
    """The model's input for a page and where it came from: layer, ocr, image, or image+layer /
    image+ocr for a VLM with a dual view (image+none: the page has no text to read)."""
    path, number = Path(task["source_path"]), int(task["page_number"])
    if getattr(backend, "needs_text", False):
        text = page_text(path, number)
        if has_usable_text(text):
            return PageInput(str(path), number, b"", text), "layer"
        rendered = render_page(path, number, dpi, max_pixels)
        return PageInput(str(path), number, rendered.png, _ocr(ocr, rendered.png)), "ocr"
    rendered = render_page(path, number, dpi, max_pixels)
    if not backend.dual_view:
        return PageInput(str(path), number, rendered.png, rendered.text), "image"
    if has_usable_text(rendered.text):
        return PageInput(str(path), number, rendered.png, rendered.text), "image+layer"
    text = _ocr(ocr, rendered.png)
    if has_usable_text(text):
        return PageInput(str(path), number, rendered.png, text), "image+ocr"
    return PageInput(str(path), number, rendered.png, ""), "image+none"  # nothing for a text view to read


def _ocr(ocr: LazyOcr, png: bytes) -> str:
    try:
        return ocr.text(png)
    except Exception as exc:
        raise RenderError(f"ocr failed: {' '.join(str(exc).split())[:200]}") from None


NOT_ADJUDICATED: dict[str, Any] = {"adjudicated": False, "adjudicator_model": None, "adjudication_reason": None,
                                   "api_input_tokens": 0, "api_output_tokens": 0, "api_cost_usd": 0.0,
                                   "batch_request": None}


def adjudicate_page(adjudicator: Adjudicator | None, rules: list[dict[str, Any]], task: dict[str, Any],
                    page: PageInput, result: ModelResult, always: bool = False,
                    below: float = 1.0) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Send the page to the API when the local answer is unsure; returns (columns, record to keep).

    Unsure: the local model failed, a field's agreement among the samples is below ``below``
    (1.0: any disagreement; on a longer document, header fields count on its first page and
    totals on its last, see ``open_disputes``), or a business rule fails.
    """
    if adjudicator is None:
        return dict(NOT_ADJUDICATED), result.record
    # A page of a longer invoice need not add up (its totals may be on another page), but its
    # own rows, dates and codes must still hold: only sums and additions wait for the document.
    page_rules = rules if task["page_count"] == 1 else [r for r in rules if r["kind"] not in WHOLE_DOCUMENT_KINDS]
    failures = rule_failures(page_rules, result.record) if result.record else []
    unsure = open_disputes(result.field_confidence, adjudicator.schema.raw, task["page_number"], task["page_count"],
                           below)
    why = (["local_error"] if result.status != "ok" else []) + \
          ([f"disputed: {','.join(unsure[:12])}"] if unsure else []) + \
          ([f"rules: {','.join(failures)}"] if failures else [])
    if not why and always:
        why = ["always"]
    if not why:
        return dict(NOT_ADJUDICATED), result.record
    request = AdjudicationRequest(
        page_sha256=f"{task['source_sha256']}:{task['page_number']}", png=page.png, text=page.text,
        schema=adjudicator.schema.raw, candidates=result.candidates, disputed=result.disputed,
        rule_failures=failures)
    outcome = adjudicator.adjudicate(request)
    columns = {"adjudicated": outcome.adjudicated, "adjudicator_model": adjudicator.model,
               "adjudication_reason": f"{'; '.join(why)} -> {outcome.reason}",
               "api_input_tokens": outcome.input_tokens, "api_output_tokens": outcome.output_tokens,
               "api_cost_usd": round(outcome.cost_usd, 6),
               # batch mode: the driver sends it with the others after the local pass
               "batch_request": json.dumps(outcome.deferred) if outcome.deferred else None}
    return columns, (outcome.record if outcome.adjudicated else result.record)


def error_row(task: dict[str, Any], error: str) -> dict[str, Any]:
    """The row of a page that produced no answer: same columns as a real one, and the reason."""
    return {**{k: task[k] for k in TASK_KEYS}, "status": "error", "error": error, "record_json": None,
            "raw_output": None, "attempts": 0, "latency_ms": 0.0, "prompt_tokens": 0, "completion_tokens": 0,
            "text_source": None, "samples": 0, "agreement": None, "min_confidence": None,
            "confidence_json": None, **NOT_ADJUDICATED}


Section = Callable[[dict[str, Any]], AbstractContextManager[Any]]
Infer = Callable[[Backend, dict[str, Any], PageInput], ModelResult]


def _open(task: dict[str, Any]) -> AbstractContextManager[Any]:
    return nullcontext()


def _infer(backend: Backend, task: dict[str, Any], page: PageInput) -> ModelResult:
    return backend.extract(page)


def process_page(backend: Backend, task: dict[str, Any], dpi: int, max_pixels: int,
                 ocr: LazyOcr | None = None, adjudicator: Adjudicator | None = None,
                 rules: list[dict[str, Any]] | None = None, adjudicate_always: bool = False,
                 adjudicate_below: float = 1.0, reading: Section = _open, infer: Infer = _infer) -> dict[str, Any]:
    """One page, start to row.  In a worker, ``reading`` is one page at a time and ``infer``
    runs the model on the worker's one model thread; the API call is in neither."""
    row: dict[str, Any] = {k: task[k] for k in TASK_KEYS}
    try:
        with reading(task):
            page, source = read_page(backend, task, dpi, max_pixels, ocr or LazyOcr())
    except RenderError as exc:
        return error_row(task, f"render_error: {exc}")
    except Exception as exc:  # never let one page kill the worker and the run
        return error_row(task, f"internal_error: {type(exc).__name__}: {exc}"[:300])
    result = infer(backend, task, page)
    adjudication, record = adjudicate_page(adjudicator, rules or [], task, page, result, adjudicate_always,
                                           adjudicate_below)
    status, error = (result.status, result.error) if not adjudication["adjudicated"] else ("ok", None)
    row.update(
        **adjudication,
        status=status,
        error=error,
        record_json=json.dumps(record, ensure_ascii=False) if record is not None else None,
        raw_output=result.raw_output,
        attempts=result.attempts,
        latency_ms=result.latency_ms,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        text_source=source,
        samples=result.samples,
        agreement=result.agreement,
        min_confidence=result.min_confidence,
        # JSON through Ray: per-page dicts with varying keys do not make one Arrow type
        confidence_json=json.dumps(result.field_confidence) if result.field_confidence else None,
    )
    return row


def make_backend(cfg: RunConfig, schema_raw: dict[str, Any], model_sha256: str,
                 chat_handler: str | None) -> Backend:
    from pipeline.model.llama import LlamaTextBackend, LlamaVLMBackend

    schema = compile_schema(schema_raw, str(cfg.schema_path))
    if cfg.backend == "vlm":
        assert chat_handler is not None
        return LlamaVLMBackend(cfg.model, schema, model_sha256, chat_handler, cfg.max_pixels)
    return LlamaTextBackend(cfg.model, schema, model_sha256)


class PageWorker:
    """Ray Data actor UDF: one model per actor, one row per page.

    Ray Data runs two calls at once in each actor (``runner.CONCURRENT_PAGES``): while one page is in
    the model, the next one is rendered (or OCR'd) and waits, and a page waiting for the API
    adjudicator does not hold the model.  Reading is one page at a time (a lock: PyMuPDF is not
    to be used from two threads at once) and inference runs on one dedicated thread: llama.cpp's
    OpenMP keeps a thread team per calling thread, and alternating callers cost 19 % of the
    pages/s with 2 threads (measured).  A page that was present when a worker died runs alone
    (``pipeline.quarantine``), so only the page that kills the worker is quarantined.
    """

    def __init__(self, config_json: str, schema_raw: dict[str, Any], model_sha256: str,
                 chat_handler: str | None, budget_keeper: Any = None, crash_counter: Any = None) -> None:
        from pipeline.adjudicate.setup import RemoteBudget, make_adjudicator

        self.crash_counter = crash_counter
        self._read_lock = threading.Lock()
        self._gate = StageGate()
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

        self.cfg = RunConfig.model_validate_json(config_json)
        self.backend = make_backend(self.cfg, schema_raw, model_sha256, chat_handler)
        self.ocr = LazyOcr()
        adj = self.cfg.adjudication
        self.adjudicator = make_adjudicator(adj, self.backend.schema, RemoteBudget(budget_keeper, adj.budget_usd)) \
            if budget_keeper is not None else None
        self.rules = check_rules(schema_raw)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        rows = []
        for i in range(len(batch["source_path"])):
            task = {k: _plain(batch[k][i]) for k in TASK_KEYS}
            crashes = self._crashes(task)
            if crashes >= self.cfg.max_page_crashes:
                rows.append(error_row(task, f"quarantined: the worker died {crashes} times on this page"))
                continue
            # A page present at a crash is a suspect: alone, a crash is its own and no one else's.
            with self._gate.alone(_key(task)) if crashes else nullcontext():
                rows.append(process_page(self.backend, task, self.cfg.dpi, self.cfg.max_pixels, self.ocr,
                                         self.adjudicator, self.rules, self.cfg.adjudication.when == "always",
                                         self.cfg.adjudication.below, self._reading, self._infer))
        return {k: [r[k] for r in rows] for k in rows[0]} if rows else {}

    def _crashes(self, task: dict[str, Any]) -> int:
        """How many worker deaths the page was inside a stage for (0 without a counter).

        Ray restarts a dead actor and retries its task, so a page that crashes llama.cpp
        (or the renderer) would loop forever; the counter outlives the actors and turns the
        page into an error row after ``max_page_crashes`` crashes (see ``pipeline.quarantine``).
        """
        if self.crash_counter is None:
            return 0
        import ray

        return int(ray.get(self.crash_counter.crashes.remote(_key(task))))

    @contextmanager
    def _reading(self, task: dict[str, Any]) -> Iterator[None]:
        with self._gate.stage(_key(task)), self._read_lock, self._crash_guard(task):
            time.sleep(float(os.environ.get(FAULT_SLOW_READ_ENV) or 0))
            yield

    def _infer(self, backend: Backend, task: dict[str, Any], page: PageInput) -> ModelResult:
        # The gate is passed here, before the page is queued: a page held back while a suspect
        # runs alone must not sit on the model thread that the suspect needs.
        with self._gate.stage(_key(task)):
            return self._model_thread.submit(self._on_model_thread, backend, task, page).result()

    def _on_model_thread(self, backend: Backend, task: dict[str, Any], page: PageInput) -> ModelResult:
        # The guard starts here, not while the page waits for the model thread: a page queued
        # behind one that kills the worker is not to blame.
        with self._crash_guard(task):
            crash_on = os.environ.get(FAULT_CRASH_ENV)  # test aid: simulate a page that kills llama.cpp
            if crash_on and crash_on in task["source_path"]:
                os._exit(70)
            return backend.extract(page)

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


def _plain(value: Any) -> Any:
    """numpy scalars from Ray batches -> plain Python values."""
    return value.item() if hasattr(value, "item") else value
