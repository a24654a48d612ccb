"""Drawing values again (``--sampling values``): only the values in doubt, from where the greedy answer
wrote them, in a few tokens each (real llama.cpp with the tiny model; the text side by hand)."""

from __future__ import annotations

import json

from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.model.base import Completion, PageInput, Unsettled
from pipeline.model.certainty import value_spans
from pipeline.model.resample import drawn_value, sample_texts, settled_early, spots

from .test_backend import PAGE as SCRIPTED_PAGE
from .test_backend import ScriptedBackend
from .test_decode import _text_backend
from .test_printed import PAGE

ANSWER = '{"date": "2024-01-05", "n": 12, "rows": [{"a": 1.5}]}'
PIECES = ['{"', 'date', '":', ' "', '2024', '-01', '-05', '",', ' "n', '":', ' ', '12', ',', ' "rows": [{"a', '":',
          ' 1', '.5', '}]}']


def test_a_value_is_drawn_again_from_the_token_that_began_it() -> None:
    found = {s.path: s for s in spots(ANSWER, PIECES, ["n", "date", "rows[0].a", "rows[3].a"])}
    assert list(found) == ["rows[0].a", "n", "date"]  # last first; a row the answer has not is left out
    date = found["date"]
    assert (date.token, date.between, ANSWER[date.start:date.end]) == (3, " ", '"2024-01-05"')
    n = found["n"]
    assert (PIECES[n.token], n.between, ANSWER[n.start:n.end]) == ("12", "", "12")  # a token begins it
    a = found["rows[0].a"]
    assert PIECES[a.token] == " 1" and a.between == " "
    assert spots(ANSWER, PIECES[:-1], ["n"]) == []  # tokens that do not spell the answer: nothing to draw


def test_a_draw_ends_once_it_has_written_a_whole_value() -> None:
    found = {s.path: s for s in spots(ANSWER, PIECES, ["n", "date"])}
    date, n = found["date"], found["n"]
    assert drawn_value(date, ' "2024-01-0') is None  # the string is still open
    assert drawn_value(date, '  "2024-05-01"') == '"2024-05-01"'  # the grammar may space it otherwise
    assert drawn_value(date, " null,") == "null"
    assert drawn_value(n, " 13") is None  # a number may go on ...
    assert drawn_value(n, " 13,") == "13"  # ... until a delimiter follows
    key = spots('{"k": 1}', ['{"k', '": 1', '}'], ["k"])[0]  # a token that closes the key and begins the value
    assert key.between == '": ' and drawn_value(key, '" : 2}') == "2"
    assert drawn_value(key, "x 2}") is None  # not the structure the grammar allows


def test_the_vote_gets_the_greedy_answer_with_each_drawn_value_in_its_place() -> None:
    found = {s.path: s for s in spots(ANSWER, PIECES, ["n", "date"])}
    texts = sample_texts(ANSWER, {"n": (found["n"], ["13", "12"]), "date": (found["date"], ['"2024-05-01"'])}, 2)
    assert [json.loads(t) for t in texts] == [
        {"date": "2024-05-01", "n": 13, "rows": [{"a": 1.5}]},
        {"date": "2024-01-05", "n": 12, "rows": [{"a": 1.5}]},  # the date settled after one draw: the greedy one
    ]
    assert settled_early("12", ["12"], 2) and not settled_early("12", ["13"], 2) and not settled_early("12", [], 2)
    assert not settled_early("12", ["12"], 4) and settled_early("12", ["12", "12"], 4)


def test_values_are_drawn_again_with_real_llama_cpp_in_a_few_tokens(tiny_vlm: TinyVLM) -> None:
    backend = _text_backend(tiny_vlm.model, 0, samples=3)
    try:
        page = PageInput("x.pdf", 1, b"", PAGE)
        greedy = backend.execute(page, 0)
        spans = value_spans(greedy.text)
        paths = [*list(spans)[-2:], next(iter(spans))]
        drawn = backend.resample(page, greedy.text, paths)
        assert drawn is not None
        completions, note = drawn
        assert len(completions) == 2 and "3 values drawn again" in note
        assert 0 < completions[0].completion_tokens < greedy.completion_tokens  # tokens of values, not answers
        for completion in completions:
            record, problem = backend._check(completion)
            assert record is not None, problem
            other = value_spans(completion.text)
            assert {p for p in spans if p not in paths} <= set(other)
            for path in spans:  # the values not drawn are the greedy answer's, as written
                if path not in paths:
                    assert completion.text[slice(*other[path])] == greedy.text[slice(*spans[path])]
        assert backend.resample(page, greedy.text + " ", paths) is None  # not the answer the cache holds
    finally:
        backend.close()


class Redrawing(ScriptedBackend):
    """Draws values again by rewriting ``n`` in the greedy answer, as a model would."""

    def resample(self, page: PageInput, text: str, paths: list[str]) -> tuple[list[Completion], str] | None:
        self.redrawn = paths
        return [Completion(text.replace('"n": 1', '"n": 2'), completion_tokens=3), Completion(text)], "drawn"


def test_only_the_values_in_doubt_are_drawn_again_and_voted() -> None:
    backend = Redrawing(['{"n": 1, "d": "2024-01-01"}'], retries=0)
    backend.samples = 3
    result = backend.extract(SCRIPTED_PAGE, lambda first: Unsettled("unsure: n (0.20)", ("n",)))
    assert backend.calls == [0] and backend.redrawn == ["n"]  # one whole answer
    assert result.samples == 3 and result.sample_reason == "unsure: n (0.20); drawn"
    assert result.record == {"n": 1, "d": "2024-01-01"} and result.field_confidence["n"] == 2 / 3
    assert result.completion_tokens == ScriptedBackend(["{}"]).execute(SCRIPTED_PAGE, 0).completion_tokens + 3

    backend = ScriptedBackend(['{"n": 1}', '{"n": 2}', '{"n": 1}'], retries=0)  # no value drawing: whole answers
    backend.samples = 3
    result = backend.extract(SCRIPTED_PAGE, lambda first: Unsettled("unsure: n (0.20)", ("n",)))
    assert backend.calls == [0, 1, 2] and result.samples == 3


def test_whole_answers_are_drawn_where_no_value_is_named() -> None:
    backend = Redrawing(['{"n": 1}', '{"n": 1}'], retries=0)
    backend.samples = 3
    result = backend.extract(SCRIPTED_PAGE, lambda first: Unsettled("rules: x"))  # --sampling adaptive
    assert backend.calls == [0, 1] and not hasattr(backend, "redrawn") and result.samples == 2



def test_an_answer_stopped_in_a_loop_is_read_on_with_real_llama_cpp(tiny_vlm: TinyVLM) -> None:
    """The closed rows are fed to the grammar and the cache, and the model writes the fields after them."""
    from pipeline.model.base import ROWS_CLOSED

    backend = _text_backend(tiny_vlm.model, 0)
    try:
        text = "Hosting Standard 3,89\nHosting Quality 5,39 5,39\nHosting Quality 5,39 5,39\n"
        page = PageInput("x.pdf", 1, b"", text)
        backend.execute(page, 0)  # the page's prompt, as for any answer
        party = '{"name": null, "vat_id": null, "address": null}'
        row = '{"description": "Hosting Quality", "quantity": null, "unit_price": "5,39", "amount": "5,39"}'
        head = (f'{{"invoice_number": "A-1", "issue_date": null, "due_date": null, "seller": {party}, '
                f'"buyer": {party}, "currency": null, "line_items": [')
        looped = Completion(head + ", ".join([row] * 4), completion_tokens=120, finish_reason="loop")
        read = backend._read_on(looped, 0, backend.page_grammar(page))
        assert read.finish_reason == ROWS_CLOSED, read.text
        assert read.text.startswith(head + f"{row}, {row}]")
        record = json.loads(read.text)
        assert len(record["line_items"]) == 2 and "total_amount" in record  # the fields after the rows
        assert read.completion_tokens > looped.completion_tokens
        bad = Completion('{"invoice_number": 7, "line_items": [' + ", ".join([row] * 4), finish_reason="loop")
        assert backend._read_on(bad, 0, None) is bad  # the grammar refuses the head: the cut answer stands
    finally:
        backend.close()
