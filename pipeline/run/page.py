"""One page, start to result: read it, ask the model, settle what is unsure, as a plain function."""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.adjudicate.base import Adjudicator
from pipeline.adjudicate.page import adjudicate_page
from pipeline.config.settings import RunConfig
from pipeline.model.base import Backend, Enough, ModelResult, Unsettled
from pipeline.results import PageResult
from pipeline.rules.checks import check_rules
from pipeline.rules.settle import Settled, ground, settle_page, ungrounded, unsettled
from pipeline.screen.read import LazyOcr, PageInput, RenderError, read_page

Section = Callable[[dict[str, Any]], AbstractContextManager[Any]]
Infer = Callable[[Backend, dict[str, Any], PageInput, Enough | None], ModelResult]


@dataclass(frozen=True)
class PageSteps:
    """What a page needs besides the backend: the run's settings and, in a worker, its sections."""

    schema: dict[str, Any]
    dpi: int
    max_pixels: int
    ocr: LazyOcr
    adjudicator: Adjudicator | None
    rules: list[dict[str, Any]]
    adjudicate_always: bool
    adjudicate_below: float
    adaptive: bool = False  # --sampling values/adaptive: more samples only where the greedy answer is unsettled
    greedy_sure: float = 0.0  # ... or chose a value with less than this probability (model.certainty)
    redraw: bool = False  # --sampling values: ... and of those only the values in doubt (model.resample)
    reading: Section = field(default=lambda task: nullcontext())
    infer: Infer = field(default=lambda backend, task, page, enough: backend.extract(page, enough))

    @classmethod
    def from_config(cls, cfg: RunConfig, schema_raw: dict[str, Any], adjudicator: Adjudicator | None,
                    **sections: Any) -> PageSteps:
        adj = cfg.adjudication
        ocr = LazyOcr(cfg.model.n_threads, cfg.ocr_line_orientation)
        return cls(schema_raw, cfg.dpi, cfg.max_pixels, ocr, adjudicator,
                   check_rules(schema_raw), adj.when == "always", adj.below, cfg.model.sampling != "fixed",
                   cfg.model.greedy_sure, redraw=cfg.model.sampling == "values", **sections)


def process_page(backend: Backend, task: dict[str, Any], steps: PageSteps) -> PageResult:
    """One page, start to result.  In a worker, ``reading`` is one page at a time and ``infer``
    runs the model on the worker's one model thread; the API call is in neither."""
    started = time.perf_counter()
    try:
        with steps.reading(task):
            page, source = read_page(backend, task, steps.dpi, steps.max_pixels, steps.ocr, steps.schema)
    except RenderError as exc:
        return PageResult.failed(task, f"render_error: {exc}")
    except Exception as exc:  # never let one page kill the worker and the run
        return PageResult.failed(task, internal_error(exc))
    seconds = {"read_ms": _ms(started), "settle_ms": 0.0, "adjudicate_ms": 0.0}
    screening = {"page_kind": page.kinds[0] if page.kinds else None, "read_kinds": list(page.kinds),
                 "hidden_text_chars": page.hidden_chars, "injection_suspected": bool(page.quarantined),
                 "quarantined_text": " | ".join(page.quarantined)[:1000] or None, "text_source": source,
                 "pages_read": len(page.words) or 1}
    if not page.extract:  # not a kind the schema is for: a row with its kind and no values, never invented ones
        return PageResult.for_task(task, status="ok", latency_ms=seconds["read_ms"], **seconds, **screening)

    def settle(result: ModelResult) -> Settled:
        began = time.perf_counter()
        try:
            return settle_page(result.record, result.field_confidence, steps.schema, steps.rules, page.words,
                               int(task["page_number"]), task["page_count"], result.candidates,
                               steps.adjudicate_below, result.normalize_nulls, page.kinds[0] if page.kinds else None)
        finally:
            seconds["settle_ms"] += _ms(began)

    first: list[tuple[ModelResult, Settled]] = []  # the greedy answer settled while deciding on more samples

    def enough(result: ModelResult) -> Unsettled | None:
        try:
            settled = settle(result)
        except Exception as exc:  # the settle after the vote meets it again and fails the page
            return Unsettled(f"settling failed: {type(exc).__name__}")
        first.append((result, settled))
        doubt = unsettled(settled, steps.rules, steps.schema, page.kinds[0] if page.kinds else None,
                          result.certainty, steps.greedy_sure)
        if doubt is None:
            return None
        return Unsettled(doubt[0], tuple(doubt[1]) if steps.redraw else ())

    result = steps.infer(backend, task, page, enough if steps.adaptive else None)
    try:
        doubts = first[0][1] if first and first[0][0] is result else settle(result)
        alternatives = result.field_alternatives
        if doubts.cohered is not None:  # rules.cohere took the tied fields from one sample
            alternatives = doubts.cohered.alternatives_over(alternatives)
        result = dataclasses.replace(result, record=doubts.record, field_confidence=doubts.confidence,
                                     field_alternatives=alternatives)
        began = time.perf_counter()
        adjudication = adjudicate_page(steps.adjudicator, steps.rules, task, page, result, doubts.open_fields,
                                       steps.adjudicate_always, steps.adjudicate_below)
        seconds["adjudicate_ms"] = _ms(began)
    except Exception as exc:  # a failure here (a cache that cannot be read, a bug) costs the page, not the run
        return PageResult.failed(task, internal_error(exc))
    local = {"status": result.status, "error": result.error, "record": result.record}
    sources = doubts.field_sources
    if "record" in adjudication:  # the adjudicator's record: its values are looked up afresh
        sources = ground(adjudication["record"], steps.schema, doubts.pages, int(task["page_number"]))
    return PageResult.for_task(
        task, **{**local, **adjudication}, raw_output=result.raw_output, attempts=result.attempts,
        latency_ms=result.latency_ms, prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
        prompt_tokens_evaluated=result.prompt_tokens_evaluated, prompt_eval_ms=result.prompt_eval_ms,
        decode_ms=result.decode_ms, **seconds, **result.decoding,
        samples=result.samples, sample_reason=result.sample_reason, agreement=result.agreement,
        min_confidence=result.min_confidence,
        field_confidence=result.field_confidence, field_alternatives=result.field_alternatives,
        certainty=result.certainty, open_fields=doubts.open_fields,
        fallback_reason=result.fallback_reason, normalize_nulls=result.normalize_nulls,
        dropped_rows=result.dropped_rows, field_sources=sources, **screening,
        repairs=doubts.repairs, doubts=doubts.doubts, ungrounded_fields=ungrounded(sources), truncated=result.truncated,
        printed=doubts.printed)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def internal_error(exc: BaseException) -> str:
    """A page's failure by a bug, on one line with where it was raised ("... (ground/votes.py:47 in
    printed_agreement)"): the error row is all a user has to report, and a run's workers print nothing."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        parts = Path(last.filename).parts
        where = f" ({'/'.join(parts[-2:])}:{last.lineno} in {last.name})"
    return f"internal_error: {type(exc).__name__}: {exc}"[:240] + where

