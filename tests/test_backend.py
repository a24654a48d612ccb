"""The backend contract, with a fake backend (scripted answers) instead of mocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.model.base import Backend, Completion, ModelResult, PageInput, Unsettled
from pipeline.run.page import PageSteps, process_page
from pipeline.schema.compiled import CompiledSchema, compile_schema, load_schema
from pipeline.screen.read import LazyOcr

from .conftest import INVOICE_SCHEMA

SIMPLE = compile_schema({
    "type": "object", "additionalProperties": False, "required": ["n"],
    "properties": {"n": {"type": "integer"}, "d": {"type": ["string", "null"], "format": "date"}},
})
PAGE = PageInput("x.pdf", 1, b"png", "text")


class ScriptedBackend(Backend):
    """Answers from a script; an Exception in the script is raised."""

    name = "scripted"
    sha256 = "0" * 64

    def __init__(self, answers: list[str | Exception], schema: CompiledSchema = SIMPLE, retries: int = 1) -> None:
        super().__init__(schema, retries=retries, samples=1, dual_view=False)
        self.answers = list(answers)
        self.calls: list[int] = []

    def execute(self, page: PageInput, attempt: int) -> Completion:
        self.calls.append(attempt)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Completion(answer, prompt_tokens=10, completion_tokens=5)


def test_valid_answer_is_ok() -> None:
    result = ScriptedBackend(['{"n": 3, "d": "2024-02-29"}']).extract(PAGE)
    assert result.status == "ok" and result.record == {"n": 3, "d": "2024-02-29"}
    assert result.error is None and result.attempts == 1 and result.prompt_tokens == 10


def test_invalid_json_is_retried_then_ok() -> None:
    backend = ScriptedBackend(['{"n": ', '{"n": 1}'])
    result = backend.extract(PAGE)
    assert result.status == "ok" and backend.calls == [0, 1] and result.attempts == 2
    assert result.prompt_tokens == 20


def test_schema_invalid_after_retries_is_an_error_with_reason() -> None:
    result = ScriptedBackend(['{"n": "three"}', '{"d": "2024-01-01", "n": 1.5}']).extract(PAGE)
    assert result.status == "error" and result.record is None
    assert result.error is not None and result.error.startswith("schema_invalid") and "$.n" in result.error
    assert result.raw_output == '{"d": "2024-01-01", "n": 1.5}'


def test_printed_values_are_normalised_before_validation() -> None:
    result = ScriptedBackend(['{"n": "1.234", "d": "31.12.2025"}']).extract(PAGE)
    assert result.status == "ok" and result.record == {"n": 1234, "d": "2025-12-31"}
    result = ScriptedBackend(['{"n": "7", "d": "2023-02-30"}']).extract(PAGE)  # impossible date -> null
    assert result.status == "ok" and result.record == {"n": 7, "d": None}


def test_non_object_answer_is_an_error() -> None:
    result = ScriptedBackend(["[1, 2]"], retries=0).extract(PAGE)
    assert result.status == "error" and "not a JSON object" in (result.error or "")


def test_backend_exception_becomes_error_result() -> None:
    result = ScriptedBackend([RuntimeError("Prompt exceeds n_ctx: 9000 > 8192")], retries=0).extract(PAGE)
    assert result.status == "error" and result.error == "model_error: Prompt exceeds n_ctx: 9000 > 8192"


def test_non_finite_numbers_are_rejected() -> None:
    schema = compile_schema({"type": "object", "properties": {"x": {"type": "number"}}})
    result = ScriptedBackend(['{"x": 1e999}'], schema=schema, retries=0).extract(PAGE)
    assert result.status == "error" and "not finite" in (result.error or "")


def test_unrenderable_page_is_an_error_row_without_model_call(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 garbage")
    backend = ScriptedBackend([], schema=load_schema(INVOICE_SCHEMA))
    task = {"source_path": str(broken), "source_sha256": "a" * 64, "page_number": 1, "page_count": 1}
    steps = PageSteps(backend.schema.raw, 72, 100_000, LazyOcr(), None, [], False, 1.0)
    result = process_page(backend, task, steps)
    assert result.status == "error" and (result.error or "").startswith("render_error")
    assert backend.calls == []


def test_samples_are_voted_field_by_field() -> None:
    backend = ScriptedBackend(['{"n": 1, "d": "2024-01-01"}', '{"n": 2, "d": "2024-01-01"}',
                               '{"n": 1, "d": "2024-01-02"}'], retries=0)
    backend.samples = 3
    result = backend.extract(PAGE)
    assert backend.calls == [0, 1, 2]
    assert result.status == "ok" and result.record == {"n": 1, "d": "2024-01-01"} and result.samples == 3
    assert result.field_confidence == {"n": 2 / 3, "d": 2 / 3}
    assert result.disputed == ["d", "n"] and result.min_confidence == round(2 / 3, 4)


def test_invalid_samples_are_dropped_and_retried() -> None:
    backend = ScriptedBackend(['{"n": 1}', 'oops', '{"n": 1}'], retries=1)
    backend.samples = 2
    result = backend.extract(PAGE)
    assert result.samples == 2 and result.attempts == 3 and result.agreement == 1.0


class TwoViewBackend(ScriptedBackend):
    """Image answers from the script, and one text-view answer."""

    def __init__(self, answers: list[str | Exception], text_answer: str | Exception, samples: int) -> None:
        super().__init__(answers, retries=0)
        self.samples, self.dual_view, self.text_answer = samples, True, text_answer

    def execute_text_view(self, page: PageInput) -> Completion:
        self.calls.append(-1)
        if isinstance(self.text_answer, Exception):
            raise self.text_answer
        return Completion(self.text_answer, prompt_tokens=7, completion_tokens=3)


def test_dual_view_votes_the_text_answer_with_the_image_samples() -> None:
    backend = TwoViewBackend(['{"n": 1, "d": "2024-01-01"}', '{"n": 1, "d": "2024-01-01"}'],
                             '{"n": 1, "d": "2024-02-01"}', samples=2)
    result = backend.extract(PAGE)
    assert backend.calls == [0, 1, -1]  # the text view comes after the image samples
    assert result.samples == 3 and result.record == {"n": 1, "d": "2024-01-01"}
    assert result.field_confidence == {"n": 1.0, "d": 2 / 3} and result.disputed == ["d"]
    assert result.prompt_tokens == 27 and result.completion_tokens == 13


def test_dual_view_answers_when_the_image_fails_and_is_skipped_without_text() -> None:
    backend = TwoViewBackend(["oops"], '{"n": 4}', samples=1)
    result = backend.extract(PAGE)
    assert result.status == "ok" and result.record == {"n": 4} and result.raw_output == '{"n": 4}'
    failing = TwoViewBackend(["oops"], RuntimeError("boom"), samples=1).extract(PAGE)
    assert failing.status == "error" and "text view: model_error: boom" in (failing.error or "")
    no_text = TwoViewBackend(['{"n": 1}'], '{"n": 2}', samples=1)
    assert no_text.extract(PageInput("x.png", 1, b"png", "")).samples == 1 and no_text.calls == [0]


def test_a_voted_record_that_does_not_validate_keeps_the_greedy_one_and_says_so() -> None:
    shapes = compile_schema({"type": "object", "properties": {"p": {"anyOf": [
        {"type": "object", "additionalProperties": False, "required": ["kind", "x"],
         "properties": {"kind": {"const": "a"}, "x": {"type": "number"}}},
        {"type": "object", "additionalProperties": False, "required": ["kind", "y"],
         "properties": {"kind": {"const": "b"}, "y": {"type": "string"}}}]}}})
    backend = ScriptedBackend(['{"p": {"kind": "a", "x": 1}}', '{"p": {"kind": "b", "y": "z"}}',
                               '{"p": {"kind": "b", "y": "z"}}'], schema=shapes, retries=0)
    backend.samples = 3
    result = backend.extract(PAGE)
    assert result.status == "ok" and result.record == {"p": {"kind": "a", "x": 1}}  # the greedy answer
    assert (result.fallback_reason or "").startswith("vote_invalid:")
    assert result.field_confidence["p.kind"] == 2 / 3  # the disagreement is still reported


def test_values_that_cannot_be_read_are_nulled_and_named() -> None:
    result = ScriptedBackend(['{"n": 1, "d": "sometime soon"}']).extract(PAGE)
    assert result.status == "ok" and result.record == {"n": 1, "d": None}
    assert result.normalize_nulls == ["d"] and result.fallback_reason is None


def test_rows_dropped_as_restated_totals_are_counted() -> None:
    sums = compile_schema({
        "type": "object", "x-rules": [{"name": "rows_sum_to_net", "kind": "sum", "items": "rows",
                                       "field": "amount", "equals": "net"}],
        "properties": {"rows": {"type": "array", "items": {"type": "object", "properties": {
            "text": {"type": "string"}, "amount": {"type": "number"}}}}, "net": {"type": ["number", "null"]}}})
    answer = ('{"rows": [{"text": "a", "amount": 4}, {"text": "b", "amount": 6}, {"text": "Total", "amount": 10}],'
              ' "net": 10}')
    result = ScriptedBackend([answer], schema=sums).extract(PAGE)
    assert result.record == {"rows": [{"text": "a", "amount": 4}, {"text": "b", "amount": 6}], "net": 10}
    assert result.dropped_rows == 1


def test_a_failure_while_voting_is_an_error_row_not_a_dead_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.model.base as base

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("voting bug")

    monkeypatch.setattr(base, "consensus", broken)  # fault injection: the real consensus has no such bug
    backend = ScriptedBackend(['{"n": 1}', '{"n": 1}'], retries=0)
    backend.samples = 2
    result = backend.extract(PAGE)
    assert result.status == "error" and (result.error or "").startswith("consensus_error: RuntimeError: voting bug")


def test_an_answer_cut_at_max_tokens_keeps_what_came_before_the_cut() -> None:
    from pipeline.model.salvage import close_cut_json

    looping = ('{"invoice_number": "A-1", "line_items": [{"description": "x", "amount": 1.0}, '
               '{"description": "y", "amount": 2.0}, {"description": "y", "amount": 2.0}, {"descr')
    assert close_cut_json(looping) == {"invoice_number": "A-1", "line_items": [
        {"description": "x", "amount": 1.0}, {"description": "y", "amount": 2.0}, {"description": "y", "amount": 2.0}]}
    assert close_cut_json('{"a": "}') is None  # nothing complete before the cut

    class Cut(ScriptedBackend):
        def execute(self, page: PageInput, attempt: int) -> Completion:
            self.calls.append(attempt)
            return Completion(looping, prompt_tokens=10, completion_tokens=2048, finish_reason="length")

    backend = Cut([], schema=load_schema(INVOICE_SCHEMA))
    result = backend.extract(PAGE)
    assert result.status == "ok" and result.truncated and backend.calls == [0, 1]  # the retry was cut too
    assert result.record is not None and result.record["invoice_number"] == "A-1"
    assert [r["description"] for r in result.record["line_items"]] == ["x", "y"]  # the loop's repeat is gone
    assert result.record["total_amount"] is None  # never reached: null, not invented
    assert "1 repeated rows removed" in (result.fallback_reason or "")


def test_an_answer_that_repeats_a_row_past_what_the_page_prints_is_cut_there() -> None:
    """Rows read alike are kept while the page prints that many; one more is the loop (model.loops)."""
    from pipeline.model.base import CUT_SAMPLES
    from pipeline.model.loops import LoopGuard, loops_past_page

    page = "Hosting Standard 3,89 3,89\nHosting Quality 5,39 5,39\nHosting Quality 5,39 5,39\n" * 1
    row = '{"description": "Hosting Quality", "unit_price": "5,39", "amount": "5,39"}'
    standard = '{"description": "Hosting Standard", "unit_price": "3,89", "amount": "3,89"}'
    assert not loops_past_page(f'{{"line_items": [{row}, {row}', page)  # two: never stopped
    assert not loops_past_page(f'{{"line_items": [{standard}, {standard}, {standard}', page * 3)  # printed 3 times
    assert loops_past_page(f'{{"line_items": [{standard}, {row}, {row}, {row}', page)  # printed twice, written 3
    unprinted = '{"description": "made up", "amount": "77,77"}'
    assert not loops_past_page(", ".join([unprinted] * 5), page)  # nothing printed bounds it: never stopped
    guard = LoopGuard(page)
    assert not guard.due(8) and guard.due(32) and guard.loops(", ".join([standard] * 3)) and guard.stopped

    looping = '{"invoice_number": "A-1", "line_items": [' + ", ".join(
        ['{"description": "x", "amount": 1.0}'] + ['{"description": "y", "amount": 2.0}'] * 3)

    class Looped(ScriptedBackend):
        def execute(self, page: PageInput, attempt: int) -> Completion:
            self.calls.append(attempt)
            return Completion(looping, prompt_tokens=10, completion_tokens=120, finish_reason="loop")

    backend = Looped([], schema=load_schema(INVOICE_SCHEMA))
    backend.samples = 3
    result = backend.extract(PAGE, enough=lambda r: Unsettled("in doubt"))  # cut answers are not sampled again
    assert result.status == "ok" and result.truncated and backend.calls == [0, 1]
    assert result.sample_reason == CUT_SAMPLES
    assert [r["description"] for r in result.record["line_items"]] == ["x", "y"]  # type: ignore[index]
    assert "repeated a row more often than the page prints it" in (result.fallback_reason or "")


def test_adaptive_sampling_stops_at_a_settled_greedy_answer_and_continues_otherwise() -> None:
    from pipeline.results import GREEDY_SETTLED

    seen: list[dict] = []

    def settled(result: ModelResult) -> Unsettled | None:
        seen.append(dict(result.record or {}))
        return None

    backend = ScriptedBackend(['{"n": 1, "d": "2024-01-01"}'], retries=0)
    backend.samples = 3
    result = backend.extract(PAGE, settled)
    assert backend.calls == [0] and result.samples == 1 and result.sample_reason == GREEDY_SETTLED
    assert seen == [{"n": 1, "d": "2024-01-01"}]

    backend = ScriptedBackend(['{"n": 1, "d": "2024-01-01"}', '{"n": 2, "d": "2024-01-01"}',
                               '{"n": 1, "d": "2024-01-01"}'], retries=0)
    backend.samples = 3
    result = backend.extract(PAGE, lambda first: Unsettled("in doubt: n"))
    assert backend.calls == [0, 1, 2]  # the greedy answer is kept; the next samples climb the ladder from it
    assert result.samples == 3 and result.sample_reason == "in doubt: n"
    assert result.record == {"n": 1, "d": "2024-01-01"}
    assert result.field_confidence["n"] == 2 / 3 and result.prompt_tokens == 30 and result.attempts == 3

    backend = ScriptedBackend(["oops", '{"n": 1}', '{"n": 1}', '{"n": 1}'], retries=1)
    backend.samples = 3
    result = backend.extract(PAGE, settled)  # an invalid greedy answer is retried before it is judged
    assert backend.calls == [0, 1] and result.samples == 1 and result.sample_reason == GREEDY_SETTLED

    backend = ScriptedBackend(["oops", "oops", '{"n": 1}', '{"n": 1}'], retries=1)
    backend.samples = 3
    result = backend.extract(PAGE, settled)  # no valid greedy answer: the other samples are drawn without asking
    assert result.sample_reason == "no whole greedy answer" and result.samples == 2 and backend.calls == [0, 1, 2, 3]


def test_adaptive_samples_stop_once_no_sample_left_could_change_the_vote() -> None:
    from pipeline.model.base import decided

    backend = ScriptedBackend(['{"n": 1, "d": "2024-01-01"}'] * 2 + ['{"n": 2, "d": "2024-01-01"}'], retries=0)
    backend.samples = 3
    result = backend.extract(PAGE, lambda first: Unsettled("unsure: n (0.20)"))
    assert backend.calls == [0, 1] and result.samples == 2  # the third could not outvote two that agree
    assert result.sample_reason == "unsure: n (0.20); the vote was decided after 2 samples"
    assert result.record == {"n": 1, "d": "2024-01-01"} and result.disputed == []

    def voted(shares: dict[str, float], k: int) -> ModelResult:
        return ModelResult("ok", {}, None, None, k, 0.0, samples=k, field_confidence=shares)

    assert decided(voted({"n": 1.0}, 2), 1) and not decided(voted({"n": 0.5}, 2), 1)
    assert decided(voted({"n": 0.6}, 5), 0) and not decided(voted({"n": 0.6}, 5), 1)  # 3 of 5, 2 to come: not yet
    assert decided(voted({"n": 1.0}, 3), 2) and not decided(voted({}, 1), 2)


def test_an_answer_stopped_in_a_loop_goes_on_after_the_rows_the_page_prints() -> None:
    """The rows are closed before the first one past the page's count; the fields after them are then
    read, not lost with the loop; the page is still flagged as cut, and not sampled again."""
    from pipeline.model.base import CUT_SAMPLES, ROWS_CLOSED, ROWS_CLOSED_NOTE
    from pipeline.model.loops import rows_closed

    page = "Hosting Standard 3,89\nHosting Quality 5,39 5,39\nHosting Quality 5,39 5,39\nTotal 14,67\n"
    row = '{"description": "Hosting Quality", "unit_price": "5,39", "amount": "5,39"}'
    standard = '{"description": "Hosting Standard", "unit_price": "3,89", "amount": "3,89"}'
    head = '{"invoice_number": "A-1", "line_items": ['
    assert rows_closed(head + ", ".join([standard, row, row, row, row]), page) == \
        head + ", ".join([standard, row, row]) + "]"  # printed twice: the third is the loop
    assert rows_closed(head + ", ".join([row, row]), page) is None  # nothing past the page
    assert rows_closed(f'{{"a": {row}, "b": {row}, "c": {row}', page) is None  # not a list: nothing to close

    party = {"name": None, "vat_id": None, "address": None}
    closed = json.dumps({"invoice_number": "A-1", "issue_date": None, "due_date": None, "seller": party,
                         "buyer": party, "currency": None, "allowance_total": None, "charge_total": None,
                         "net_amount": None, "tax_amount": None, "total_amount": 2.0, "line_items": [
                             {"description": "y", "quantity": None, "unit_price": None, "amount": 2.0}]})

    class Closed(ScriptedBackend):
        def execute(self, page: PageInput, attempt: int) -> Completion:
            self.calls.append(attempt)
            return Completion(closed, prompt_tokens=10, completion_tokens=90, finish_reason=ROWS_CLOSED)

    backend = Closed([], schema=load_schema(INVOICE_SCHEMA))
    backend.samples = 3
    result = backend.extract(PAGE, enough=lambda r: Unsettled("in doubt"))
    assert result.status == "ok", result.error
    assert result.truncated and backend.calls == [0]  # whole: no retry, no samples
    assert result.record is not None and result.record["total_amount"] == 2.0  # read on past the rows
    assert result.fallback_reason == ROWS_CLOSED_NOTE and result.sample_reason == CUT_SAMPLES
