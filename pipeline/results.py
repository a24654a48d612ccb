"""The typed result of one page, from the worker through the assembler to the sink.

Every page ends as exactly one ``PageResult`` with an explicit ``status`` (ok or error, with a
reason).  Its fields are declared here once: the worker fills them, Ray carries them as a flat
row (``to_row``/``from_row``: nested values as JSON text, since per-page dicts with varying keys
do not make one Arrow type), the assembler reads them, and the ``pages`` table's provenance
columns are derived from them (``pipeline.sink.parquet``).  The traces of every fallback live
here too (``fallback_reason``, ``normalize_nulls``, ``dropped_rows``), so a user sees them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal, TypedDict


class FieldSource(TypedDict):
    """Where a value is printed (``pipeline.ground``): a result type, so it lives beside ``PageResult``."""

    page: int
    bbox: list[float] | None  # x0, y0, x1, y1 in PDF points (pixels for an image file); None when not found
    text: str | None  # the page's words that matched
    match: str  # one of ground.sources.MATCH_KINDS


TASK_KEYS = ("source_path", "source_sha256", "page_number", "page_count")
PAGES_READ = "pages_read"  # a task's pages read in one request, from page_number (``--read-pages``); 1 if absent
GREEDY_SETTLED = "greedy answer settled"  # sample_reason of a page whose greedy answer needed no vote
# carried through Ray as JSON text
_JSON = ("record", "field_confidence", "field_alternatives", "certainty", "field_probability",
         "open_fields", "normalize_nulls", "field_sources", "ungrounded_fields",
         "repairs", "doubts", "read_kinds", "printed")
_MAPS = ("field_confidence", "field_alternatives", "field_sources", "certainty", "field_probability")
# not provenance columns of their own
INTERNAL = frozenset({"record", "batch_request", "open_fields", "read_kinds", "printed"})


@dataclass
class PageResult:
    source_path: str
    source_sha256: str
    page_number: int | None
    page_count: int | None
    status: Literal["ok", "error"] = "error"
    error: str | None = None
    record: dict[str, Any] | None = None
    raw_output: str | None = None
    attempts: int = 0
    latency_ms: float = 0.0  # the model's time on the page; for a page no model reads (pipeline.screen), the reading
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # drafted decoding (model.decode): answer tokens guessed ahead, of them the grammar's forced text, kept;
    # model calls after the prompt (without drafts: one per answer token)
    drafted_tokens: int = 0
    forced_tokens: int = 0
    accepted_tokens: int = 0
    decode_calls: int = 0
    # where the page's seconds went: reading (render, text layer or OCR, screening), llama.cpp's prompt
    # evaluation and decoding (of latency_ms, the model's time), settling (grounding, rules), the API
    read_ms: float = 0.0
    prompt_eval_ms: float = 0.0
    decode_ms: float = 0.0
    settle_ms: float = 0.0
    adjudicate_ms: float = 0.0
    prompt_tokens_evaluated: int = 0  # of prompt_tokens, those llama.cpp evaluated (the rest came from its cache)
    text_source: str | None = None  # layer, ocr, image, image+layer, image+ocr, image+none, xml
    samples: int = 0
    sample_reason: str | None = None  # --sampling adaptive: why the page got more than the greedy answer
    agreement: float | None = None
    min_confidence: float | None = None
    field_confidence: dict[str, float] = field(default_factory=dict)
    field_alternatives: dict[str, list[str]] = field(default_factory=dict)  # disputed path -> what other samples read
    # the greedy answer's values, as the model wrote them: the probability of each one's least likely token
    certainty: dict[str, float] = field(default_factory=dict)
    # per value outside arrays, the probability that it is right (rules.confidence; set by the assembler)
    field_probability: dict[str, float] = field(default_factory=dict)
    # disputed fields that matter on this page (schema.scope.open_disputes): decided once, in the worker
    open_fields: list[str] = field(default_factory=list)
    fallback_reason: str | None = None  # e.g. the voted record did not validate: the greedy one was kept
    truncated: bool = False  # the answer was cut at max_tokens: the record holds what came before (model.salvage)
    normalize_nulls: list[str] = field(default_factory=list)  # fields nulled because they could not be read
    dropped_rows: int = 0  # rows dropped as restated totals (rules.checks.drop_restated_totals)
    # where each value is printed on the page (pipeline.ground), and the values printed nowhere
    field_sources: dict[str, FieldSource] = field(default_factory=dict)
    ungrounded_fields: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)  # values the rules and the page's amounts corrected (rules.totals)
    # values in doubt for a reason of their own, "path: why" (rules.settle): a currency or a date's
    # order the page does not settle, a value every such document has that is missing
    doubts: list[str] = field(default_factory=list)
    # the amounts, rates and row totals the pages read print (rules.repairs.printed_facts): the
    # document's repair needs them once all its pages are merged
    printed: dict[str, list[float]] = field(default_factory=dict)
    pages_read: int = 1  # pages read in this row's request, from this page (--read-pages)
    # what the screening found (pipeline.screen, pipeline.render.visible), for the request this row holds
    page_kind: str | None = None  # invoice, credit_note, receipt, delivery_note, order, letter, terms, blank, other
    hidden_text_chars: int = 0  # characters of text layer nobody can see: left out of what the model read
    injection_suspected: bool = False  # text that spoke to the machine was found and left out (quarantined_text)
    quarantined_text: str | None = None
    read_kinds: list[str] = field(default_factory=list)  # the kind of each page the request read
    read_with: int | None = None  # read in one request with this page, whose row holds the record (--read-pages)
    einvoice_error: str | None = None  # why the document's e-invoice XML was not used (pipeline.einvoice)
    adjudicated: bool = False
    adjudicator_model: str | None = None
    adjudication_reason: str | None = None
    api_input_tokens: Annotated[int, "int64"] = 0
    api_output_tokens: Annotated[int, "int64"] = 0
    api_cost_usd: float = 0.0
    batch_request: str | None = None  # batch mode: the request the driver sends with the others

    @classmethod
    def for_task(cls, task: dict[str, Any], **values: Any) -> PageResult:
        return cls(**{k: task[k] for k in TASK_KEYS}, **values)

    @classmethod
    def failed(cls, task: dict[str, Any], error: str) -> PageResult:
        """A page that produced no answer: the same fields as any other, and the reason."""
        return cls.for_task(task, status="error", error=error)

    def companions(self, span: int) -> list[PageResult]:
        """The rows of the other pages read in the same request: the same status and error, no
        record of their own (the first page's row holds what the request read)."""
        first = self.page_number or 1
        kinds = dict(enumerate(self.read_kinds, start=first))  # none when the request failed before screening
        return [PageResult.for_task({"source_path": self.source_path, "source_sha256": self.source_sha256,
                                     "page_number": n, "page_count": self.page_count},
                                    status=self.status, error=self.error, text_source=self.text_source, read_with=first,
                                    page_kind=kinds.get(n))
                for n in range(first + 1, first + span)]

    @property
    def disputed(self) -> list[str]:
        return sorted(p for p, c in self.field_confidence.items() if c < 1.0)

    @property
    def needs_review(self) -> bool:
        return bool(self.review_reasons)

    @property
    def review_reasons(self) -> list[str]:
        """Why a person should look, one line each: the page failed or was cut short, a doubt that
        matters was not settled by the API, or the page cannot be trusted whatever the samples say:
        text on it spoke to the machine, text on it was hidden, or the API's record has a value
        printed nowhere on it (the local record's are among ``open_fields`` where they matter)."""
        reasons = [f"page failed: {self.error}"] if self.status != "ok" else []
        reasons += ["answer cut (at max_tokens, or looping past what the page prints)"] if self.truncated else []
        reasons += ["text on the page spoke to the machine"] if self.injection_suspected else []
        reasons += ["text on the page is hidden"] if self.hidden_text_chars > 0 else []
        if self.open_fields and not self.adjudicated:
            reasons.append(f"in doubt: {', '.join(self.open_fields[:10])}")
        if self.adjudicated and self.ungrounded_fields:
            reasons.append(f"the API's values printed nowhere: {', '.join(self.ungrounded_fields[:10])}")
        return reasons

    def to_row(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        for key in _JSON:
            row[key] = json.dumps(row[key], ensure_ascii=False) if row[key] not in (None, [], {}) else None
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PageResult:
        values = {f.name: unboxed(row[f.name]) for f in dataclasses.fields(cls) if f.name in row}
        for key in _JSON:
            text = values.get(key)
            values[key] = json.loads(text) if isinstance(text, str) else (
                {} if key in _MAPS else None if key == "record" else [])
        return cls(**values)

    def columns(self) -> dict[str, Any]:
        """The page's provenance columns (``INTERNAL`` fields left out)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in INTERNAL}


def provenance_fields() -> list[tuple[str, Any]]:
    """(name, Python type) of each provenance column a page result has, in declaration order."""
    import typing

    hints = typing.get_type_hints(PageResult)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(PageResult) if f.name not in INTERNAL]


def unboxed(value: Any) -> Any:
    """numpy scalars from Ray batches -> plain Python values."""
    return value.item() if hasattr(value, "item") else value


# Where a run's seconds and tokens went, summed over its pages for the manifest and the summary
# (measured before anything is made faster): reading (render, text layer or OCR, screening),
# llama.cpp's prompt evaluation and decoding, settling (grounding, rules) and the API.
STAGES = ("read_ms", "prompt_eval_ms", "decode_ms", "latency_ms", "settle_ms", "adjudicate_ms")


@dataclass
class Work:
    pages_model: int = 0  # requests the model answered (a request may read several pages: --read-pages)
    samples: int = 0
    greedy_only: int = 0  # --sampling adaptive: requests the greedy answer settled
    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0
    answer_tokens: int = 0
    ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def add(self, result: PageResult) -> None:
        for stage in STAGES:
            self.ms[stage] += float(getattr(result, stage) or 0.0)
        if not result.attempts:
            return
        self.pages_model += 1
        self.samples += result.samples
        self.greedy_only += result.sample_reason == GREEDY_SETTLED
        self.prompt_tokens += result.prompt_tokens
        self.prompt_tokens_evaluated += result.prompt_tokens_evaluated
        self.answer_tokens += result.completion_tokens

    def summary(self) -> dict[str, Any]:
        """The manifest's ``work``: totals, and per model request the means a reader compares."""
        n = max(self.pages_model, 1)
        seconds = {stage.removesuffix("_ms").replace("latency", "model"): round(ms / 1000, 2)
                   for stage, ms in self.ms.items()}
        return {**{k: v for k, v in asdict(self).items() if k != "ms"}, "seconds": seconds,
                "per_request": {"samples": round(self.samples / n, 3),
                                **{k: round(getattr(self, k) / n, 1)
                                   for k in ("answer_tokens", "prompt_tokens", "prompt_tokens_evaluated")}}}


def work_line(work: dict[str, Any]) -> str:
    """A manifest's ``work`` in one line for the run's summary table."""
    s, per = work["seconds"], work["per_request"]
    return (f"model {s['model']:.0f} s (prompt {s['prompt_eval']:.0f}, decoding {s['decode']:.0f}), "
            f"reading {s['read']:.0f} s, settling {s['settle']:.1f} s, API {s['adjudicate']:.0f} s; per request "
            f"{per['samples']:.2f} samples, {per['answer_tokens']:.0f} answer tokens, "
            f"{per['prompt_tokens_evaluated']:.0f} of {per['prompt_tokens']:.0f} prompt tokens evaluated; "
            f"{work['greedy_only']} of {work['pages_model']} settled by the greedy answer")
