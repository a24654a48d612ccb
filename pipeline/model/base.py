"""The model backend interface.

A backend does one thing, ``execute``: turn a page into the model's raw answer text.  All
that is common to every backend lives here, in ``extract``: parse the answer as JSON,
validate it against the schema, retry once with another seed when it is not valid, and
return an explicit status.  A page never raises out of ``extract`` and never comes back as a
silent empty record: it is ``ok`` with a validated record, or ``error`` with a reason.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.consensus.normalize import normalize_record
from pipeline.consensus.vote import alternatives_text, consensus
from pipeline.model.salvage import close_cut_json, with_missing_nulls, without_repeats
from pipeline.schema.compiled import CompiledSchema
from pipeline.screen.read import PageInput


@dataclass(frozen=True)
class Completion:
    """One raw answer from a model."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    # drafted decoding (model.decode): answer tokens guessed ahead, of them from the grammar, kept; model calls
    drafted_tokens: int = 0
    forced_tokens: int = 0
    accepted_tokens: int = 0
    decode_calls: int = 0


DECODING = ("drafted_tokens", "forced_tokens", "accepted_tokens", "decode_calls")


@dataclass
class ModelResult:
    status: Literal["ok", "error"]
    record: dict[str, Any] | None
    error: str | None
    raw_output: str | None
    attempts: int
    latency_ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    samples: int = 0  # valid samples the record was voted from
    field_confidence: dict[str, float] = field(default_factory=dict)
    field_alternatives: dict[str, list[str]] = field(default_factory=dict)  # disputed path -> values that lost, as text
    agreement: float | None = None  # mean field confidence (None with a single sample)
    min_confidence: float | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)  # the valid samples, greedy first
    fallback_reason: str | None = None  # why the record is not the voted one
    normalize_nulls: list[str] = field(default_factory=list)  # fields of the record nulled as unreadable
    dropped_rows: int = 0  # rows of the record dropped as restated totals
    truncated: bool = False  # every answer was cut at max_tokens: the record is what came before the cut
    decoding: dict[str, int] = field(default_factory=dict)  # DECODING counts summed over the page's answers

    @property
    def disputed(self) -> list[str]:
        return sorted(p for p, c in self.field_confidence.items() if c < 1.0)


class Backend(ABC):
    """A model that fills in a JSON Schema from a page."""

    name: str
    sha256: str

    def __init__(self, schema: CompiledSchema, *, retries: int, samples: int, dual_view: bool) -> None:
        self.schema = schema
        self.retries = retries
        self.samples = samples
        self.dual_view = dual_view

    @abstractmethod
    def execute(self, page: PageInput, attempt: int) -> Completion:
        """Return the model's raw answer for ``page``.

        ``attempt`` 0 is the greedy answer; later attempts (more samples, retries) sample with a
        rising temperature and another seed.

        May raise: any exception becomes an error result in ``extract``.
        """

    def execute_text_view(self, page: PageInput) -> Completion:
        """The answer from the page's text instead of its image (``dual_view``); backends that read
        images and can also read text override this."""
        raise NotImplementedError(f"{type(self).__name__} has no text view")

    def extract(self, page: PageInput) -> ModelResult:
        """Up to ``samples`` valid answers (plus ``retries`` spare attempts), voted field by field.

        With ``dual_view`` and a page that has text, one more answer is read from the text: an
        independent way to misread the page, so where it disagrees with the image the field is
        disputed (and it still answers when every image sample failed).
        """
        usage = dict.fromkeys(("prompt_tokens", "completion_tokens", *DECODING), 0)
        result = self._extract(page, usage)
        result.decoding = {k: usage[k] for k in DECODING}
        return result

    def _extract(self, page: PageInput, usage: dict[str, int]) -> ModelResult:
        started = time.perf_counter()
        cut: str | None = None  # the first answer cut at max_tokens, kept in case none is whole
        problem = "no attempt made"
        raw: str | None = None
        valid: list[dict[str, Any]] = []
        traces: list[tuple[list[str], int]] = []  # per valid sample: (fields nulled, rows dropped)
        attempts = 0
        while len(valid) < self.samples and attempts < self.samples + self.retries:
            attempt, attempts = attempts, attempts + 1
            record, problem, text = self._attempt(usage, traces, self.execute, page, attempt)
            if record is None and text is not None and cut is None and CUT_MARK in problem:
                cut = text
            raw = raw if valid or text is None else text  # keep the answer the record comes from
            if record is not None:
                valid.append(record)
        if self.dual_view and page.text.strip():
            attempts += 1
            record, text_problem, text = self._attempt(usage, traces, self.execute_text_view, page)
            raw = raw if valid or text is None else text
            if record is not None:
                valid.append(record)
            elif not valid:
                problem = f"{problem}; text view: {text_problem}"
        prompt_tokens, completion_tokens = usage["prompt_tokens"], usage["completion_tokens"]
        if not valid and cut is not None:
            kept = self._salvage(cut)
            if kept is not None:
                record, repeats = kept
                return ModelResult("ok", record, None, cut, attempts, _ms(started), prompt_tokens,
                                   completion_tokens, samples=1, candidates=[record], truncated=True,
                                   fallback_reason=f"answer cut at max_tokens ({problem}); kept what came before "
                                                   f"the cut, {repeats} repeated rows removed, the rest null"[:300])
        if not valid:
            return ModelResult("error", None, problem, raw, attempts,
                               _ms(started), prompt_tokens, completion_tokens)
        result = ModelResult("ok", valid[0], None, raw, attempts, _ms(started), prompt_tokens,
                             completion_tokens, samples=len(valid), candidates=valid,
                             normalize_nulls=traces[0][0], dropped_rows=traces[0][1])
        if len(valid) > 1:
            try:
                voted = consensus(valid, self.schema.raw)
            except Exception as exc:  # a bug in voting costs this page, not the run
                return ModelResult("error", None, f"consensus_error: {type(exc).__name__}: {exc}"[:300], raw,
                                   attempts, _ms(started), prompt_tokens, completion_tokens)
            problems = self.schema.errors(voted.record)
            if problems:
                result.fallback_reason = f"vote_invalid: {problems[0]}; the greedy answer was kept"[:300]
            else:
                result.record = voted.record
                result.normalize_nulls = sorted({f for nulled, _ in traces for f in nulled})
                result.dropped_rows = max(dropped for _, dropped in traces)
            result.field_confidence = voted.confidence
            result.field_alternatives = alternatives_text(voted.alternatives)
            result.agreement = round(voted.mean_confidence, 4)
            result.min_confidence = round(voted.min_confidence, 4)
        return result

    def _attempt(self, usage: dict[str, int], traces: list[tuple[list[str], int]], call: Callable[..., Completion],
                 *args: Any) -> tuple[dict[str, Any] | None, str, str | None]:
        """One model call, checked: (record or None, problem, raw text); never raises."""
        try:
            completion = call(*args)
        except Exception as exc:  # a backend failure is a page error, not a dead run
            return None, f"model_error: {' '.join(str(exc).split())[:300] or type(exc).__name__}", None
        for key in usage:
            usage[key] += getattr(completion, key)
        try:
            record, problem = self._check(completion, traces)
        except Exception as exc:  # a bug in normalisation must cost a page, not the run
            record, problem = None, f"normalize_error: {type(exc).__name__}: {exc}"[:300]
        return record, problem, completion.text

    def _check(self, completion: Completion,
               traces: list[tuple[list[str], int]] | None = None) -> tuple[dict[str, Any] | None, str]:
        try:
            value = json.loads(completion.text)
        except json.JSONDecodeError as exc:
            cut = f" ({CUT_MARK})" if completion.finish_reason == "length" else ""
            return None, f"invalid_json: {exc.msg} at char {exc.pos}{cut}"
        if not isinstance(value, dict):
            return None, "invalid_json: answer is not a JSON object"
        return self._validated(value, traces)

    def _validated(self, value: dict[str, Any],
                   traces: list[tuple[list[str], int]] | None) -> tuple[dict[str, Any] | None, str]:
        """An answer's object normalised, mended and validated against the schema."""
        nulled: list[str] = []
        value, dropped = self.schema.mend_counted(normalize_record(value, self.schema.raw, nulled=nulled))
        problems = self.schema.errors(value)
        if problems:
            return None, f"schema_invalid: {'; '.join(problems[:3])}"
        if traces is not None:
            traces.append((nulled, dropped))
        return value, ""


    def _salvage(self, text: str) -> tuple[dict[str, Any], int] | None:
        """The record before the cut (``model.salvage``), if it validates; and the repeats removed."""
        closed = close_cut_json(text)
        if closed is None:
            return None
        value, repeats = without_repeats(closed)
        record, _ = self._validated(with_missing_nulls(value, self.schema.raw), None)
        return (record, repeats) if record is not None else None


CUT_MARK = "output cut at max_tokens"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 2)
