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
from pipeline.results import GREEDY_SETTLED
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
    # llama.cpp's own timings of the call: evaluating the prompt (the part not reused from its cache) and decoding
    prompt_eval_ms: float = 0.0
    decode_ms: float = 0.0
    prompt_tokens_evaluated: int = 0
    # the greedy answer's values: the probability of each one's least likely token (model.certainty)
    certainty: dict[str, float] = field(default_factory=dict)


DECODING = ("drafted_tokens", "forced_tokens", "accepted_tokens", "decode_calls")
USAGE = ("prompt_tokens", "completion_tokens", "prompt_eval_ms", "decode_ms", "prompt_tokens_evaluated", *DECODING)


@dataclass
class Draws:
    """What a page's model calls drew so far, so that a later round continues where the first stopped."""

    valid: list[dict[str, Any]] = field(default_factory=list)
    traces: list[tuple[list[str], int]] = field(default_factory=list)  # per valid answer: (fields nulled, rows dropped)
    usage: dict[str, float] = field(default_factory=lambda: dict.fromkeys(USAGE, 0))
    attempts: int = 0
    raw: str | None = None
    cut: str | None = None  # the first answer cut (max_tokens, a loop), kept in case none is whole
    closed: dict[str, Any] | None = None  # the record of an answer read on past a loop (ROWS_CLOSED)
    problem: str = "no attempt made"
    seconds: float = 0.0
    certainty: dict[str, float] = field(default_factory=dict)  # the first valid answer's (model.certainty)

    def ms(self) -> float:
        return round(self.seconds * 1000.0, 2)


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
    truncated: bool = False  # every answer was cut (max_tokens, a loop): the record is what came before, or read on
    decoding: dict[str, int] = field(default_factory=dict)  # DECODING counts summed over the page's answers

    sample_reason: str | None = None  # adaptive sampling: why the page got more than the greedy answer
    prompt_eval_ms: float = 0.0  # of latency_ms: llama.cpp evaluating prompts, and decoding answers
    decode_ms: float = 0.0
    prompt_tokens_evaluated: int = 0  # of prompt_tokens: those not reused from the cache
    certainty: dict[str, float] = field(default_factory=dict)  # the greedy answer's, per value (model.certainty)

    @property
    def disputed(self) -> list[str]:
        return sorted(p for p, c in self.field_confidence.items() if c < 1.0)


@dataclass(frozen=True)
class Unsettled:
    """Why a greedy answer needs a vote, and of which values (``paths``: the values to draw again with
    ``--sampling values``; empty: whole answers)."""

    why: str
    paths: tuple[str, ...] = ()


# Adaptive sampling: shown the greedy answer, why it needs the other samples (None: it needs none)
Enough = Callable[["ModelResult"], Unsettled | None]


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

    def resample(self, page: PageInput, text: str, paths: list[str]) -> tuple[list[Completion], str] | None:
        """The other samples as the greedy answer ``text`` with only its values at ``paths`` drawn again,
        and a note of what that drew; None where the backend cannot (then whole answers are drawn)."""
        return None

    def execute_text_view(self, page: PageInput) -> Completion:
        """The answer from the page's text instead of its image (``dual_view``); backends that read
        images and can also read text override this."""
        raise NotImplementedError(f"{type(self).__name__} has no text view")

    def extract(self, page: PageInput, enough: Enough | None = None) -> ModelResult:
        """Up to ``samples`` valid answers (plus ``retries`` spare attempts), voted field by field.

        With ``enough`` (adaptive sampling) the greedy answer is drawn first and shown to it: when it
        says the answer needs no vote (None), the page costs one answer; otherwise the reason is kept
        (``sample_reason``) and the other samples are drawn and voted with it.  Deciding here, on the
        worker's model thread, keeps the page's prompt in llama.cpp's cache for the extra samples.

        Where ``enough`` names the values in doubt (``--sampling values``) and the backend can
        (``resample``), only those values are drawn again, from where the greedy answer wrote them: a
        few tokens each instead of whole answers, and the rest of the record is the greedy answer's.

        Otherwise the other samples come one by one, and stop once no sample left could change the vote's
        winner of any field (``decided``): with 3 samples, a second that agrees with the greedy answer
        everywhere gives the record the third would have given, flags included (2 of 3 is a majority).

        With ``dual_view`` and a page that has text, one more answer is read from the text: an
        independent way to misread the page, so where it disagrees with the image the field is
        disputed (and it still answers when every image sample failed).
        """
        draws = Draws()
        if enough is not None and self.samples > 1:
            first = self._draw(page, draws, 1, dual_view=False)
            if first.truncated:  # cut (its retries too, or read on past a loop): so would the others be
                first.sample_reason = CUT_SAMPLES
                return first
            doubt = enough(first) if first.status == "ok" else Unsettled("no whole greedy answer")
            if doubt is None:
                first.sample_reason = GREEDY_SETTLED
                return first
            if doubt.paths and first.raw_output is not None and not first.fallback_reason and not self.dual_view:
                redrawn = self._redrawn(page, draws, first.raw_output, doubt)
                if redrawn is not None:
                    return redrawn
            why = doubt.why
            for want in range(2, self.samples + 1):
                result = self._draw(page, draws, want, self.dual_view and want == self.samples)
                if want < self.samples and not self.dual_view and decided(result, self.samples - want):
                    why += f"; the vote was decided after {want} samples"
                    break
            result.sample_reason = why[:300]
            return result
        return self._draw(page, draws, self.samples, self.dual_view)

    def _redrawn(self, page: PageInput, draws: Draws, text: str, doubt: Unsettled) -> ModelResult | None:
        """The vote of the greedy answer and its copies with the values ``doubt`` names drawn again."""
        started = time.perf_counter()
        try:
            drawn = self.resample(page, text, list(doubt.paths))
        except Exception as exc:  # a failed draw costs the page its vote, not the page: whole answers follow
            draws.problem = f"drawing values again failed: {type(exc).__name__}: {exc}"[:300]
            drawn = None
        if drawn is None:
            draws.seconds += time.perf_counter() - started
            return None
        completions, note = drawn
        for completion in completions:
            draws.attempts += 1
            record, draws.problem, _ = self._attempt(draws, lambda c: c, completion)
            if record is not None:
                draws.valid.append(record)
        result = self._tally(draws)
        draws.seconds += time.perf_counter() - started
        result.latency_ms = draws.ms()
        result.sample_reason = f"{doubt.why[:200]}; {note}"[:300]
        return result

    def _draw(self, page: PageInput, draws: Draws, want: int, dual_view: bool) -> ModelResult:
        """Draw answers until ``want`` are valid (``draws``: what earlier calls drew), and vote them."""
        started = time.perf_counter()
        result = self._vote(page, draws, want, dual_view)
        draws.seconds += time.perf_counter() - started
        result.latency_ms = draws.ms()  # every round's model time, the greedy answer's included
        return result

    def _vote(self, page: PageInput, draws: Draws, want: int, dual_view: bool) -> ModelResult:
        valid = draws.valid
        while len(valid) < want and draws.attempts < want + self.retries:
            attempt, draws.attempts = draws.attempts, draws.attempts + 1
            record, draws.problem, text = self._attempt(draws, self.execute, page, attempt)
            if record is None and text is not None and draws.cut is None and \
                    any(mark in draws.problem for mark in CUT_MARKS.values()):
                draws.cut = text
            draws.raw = draws.raw if valid or text is None else text  # keep the answer the record comes from
            if record is not None:
                valid.append(record)
        if dual_view and page.text.strip():
            draws.attempts += 1
            record, text_problem, text = self._attempt(draws, self.execute_text_view, page)
            draws.raw = draws.raw if valid or text is None else text
            if record is not None:
                valid.append(record)
            elif not valid:
                draws.problem = f"{draws.problem}; text view: {text_problem}"
        return self._tally(draws)

    def _tally(self, draws: Draws) -> ModelResult:
        """The vote of what ``draws`` holds, with the usage of every call that drew it."""
        usage = draws.usage
        result = self._voted(draws)
        result.decoding = {k: int(usage[k]) for k in DECODING}
        result.prompt_eval_ms, result.decode_ms = round(usage["prompt_eval_ms"], 2), round(usage["decode_ms"], 2)
        result.prompt_tokens_evaluated = int(usage["prompt_tokens_evaluated"])
        result.certainty = draws.certainty
        return result

    def _voted(self, draws: Draws) -> ModelResult:
        valid, traces, raw, attempts = draws.valid, draws.traces, draws.raw, draws.attempts
        prompt_tokens, completion_tokens = int(draws.usage["prompt_tokens"]), int(draws.usage["completion_tokens"])
        ms = 0.0  # the round's time is added once it ends (_draw)
        if not valid and draws.cut is not None:
            kept = self._salvage(draws.cut)
            if kept is not None:
                record, repeats = kept
                return ModelResult("ok", record, None, draws.cut, attempts, ms, prompt_tokens,
                                   completion_tokens, samples=1, candidates=[record], truncated=True,
                                   fallback_reason=f"answer cut ({draws.problem}); kept what came "
                                                   f"before the cut, {repeats} repeated rows removed, the rest null"
                                                   [:300])
        if not valid:
            return ModelResult("error", None, draws.problem, raw, attempts, ms, prompt_tokens, completion_tokens)
        result = ModelResult("ok", valid[0], None, raw, attempts, ms, prompt_tokens,
                             completion_tokens, samples=len(valid), candidates=list(valid),
                             normalize_nulls=traces[0][0], dropped_rows=traces[0][1])
        if len(valid) == 1 and valid[0] is draws.closed:  # its rows may be the loop's, not the page's
            result.truncated, result.fallback_reason = True, ROWS_CLOSED_NOTE
        if len(valid) > 1:
            try:
                voted = consensus(valid, self.schema.raw)
            except Exception as exc:  # a bug in voting costs this page, not the run
                return ModelResult("error", None, f"consensus_error: {type(exc).__name__}: {exc}"[:300], raw,
                                   attempts, ms, prompt_tokens, completion_tokens)
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

    def _attempt(self, draws: Draws, call: Callable[..., Completion],
                 *args: Any) -> tuple[dict[str, Any] | None, str, str | None]:
        """One model call, checked: (record or None, problem, raw text); never raises."""
        try:
            completion = call(*args)
        except Exception as exc:  # a backend failure is a page error, not a dead run
            return None, f"model_error: {' '.join(str(exc).split())[:300] or type(exc).__name__}", None
        for key in draws.usage:
            draws.usage[key] += getattr(completion, key)
        try:
            record, problem = self._check(completion, draws.traces)
        except Exception as exc:  # a bug in normalisation must cost a page, not the run
            record, problem = None, f"normalize_error: {type(exc).__name__}: {exc}"[:300]
        if record is not None and not draws.valid:  # the answer the record starts from (greedy, when valid)
            draws.certainty = completion.certainty
        if record is not None and completion.finish_reason == ROWS_CLOSED:
            draws.closed = record
        return record, problem, completion.text

    def _check(self, completion: Completion,
               traces: list[tuple[list[str], int]] | None = None) -> tuple[dict[str, Any] | None, str]:
        try:
            value = json.loads(completion.text)
        except json.JSONDecodeError as exc:
            cut = f" ({CUT_MARKS[completion.finish_reason]})" if completion.finish_reason in CUT_MARKS else ""
            return None, f"invalid_json: {exc.msg} at char {exc.pos}{cut}"
        if not isinstance(value, dict):
            return None, "invalid_json: answer is not a JSON object"
        # a page's kind may leave fields out of its answer (x-kind-fields): the record has them as null
        return self._validated(with_missing_nulls(value, self.schema.raw), traces)

    def _validated(self, value: dict[str, Any],
                   traces: list[tuple[list[str], int]] | None) -> tuple[dict[str, Any] | None, str]:
        """An answer's object normalised, rid of restated rows and validated against the schema."""
        nulled: list[str] = []
        value, dropped = self.schema.drop_restated_rows(normalize_record(value, self.schema.raw, nulled=nulled))
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


def decided(result: ModelResult, remaining: int) -> bool:
    """Whether ``remaining`` more samples could change no field's winner: for each field the winner's
    votes exceed all the others' by more than ``remaining`` (counted from the agreement share)."""
    if result.status != "ok" or result.samples < 2 or result.fallback_reason or not result.field_confidence:
        return False
    k = result.samples
    return all(2 * round(share * k) - k > remaining for share in result.field_confidence.values())


CUT_SAMPLES = ("the greedy answer was cut (a loop, or max_tokens and its retries too): no further samples, they "
               "would be cut as well")
ROWS_CLOSED = "rows_closed"  # finish_reason of an answer read on past a loop (model.loops.rows_closed)
ROWS_CLOSED_NOTE = ("the answer repeated a row more often than the page prints it (model.loops): its rows were "
                    "closed before the repeats and the fields after them read on from there")
# why an answer ended before its JSON did, by finish_reason: what came before the cut is kept (salvage)
CUT_MARKS = {"length": "output cut at max_tokens",
             "loop": "output cut early: it repeated a row more often than the page prints it (model.loops)"}
