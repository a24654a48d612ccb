"""Adjudication through the real anthropic and openai SDKs against loopback servers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline.adjudicate.api import AnthropicAdjudicator, OpenAIAdjudicator
from pipeline.adjudicate.base import AdjudicationRequest, Budget, ResponseCache, cost_usd
from pipeline.schema.compiled import load_schema

from .conftest import INVOICE_SCHEMA
from .fake_anthropic import GOOD, Script

SCHEMA = load_schema(INVOICE_SCHEMA)
SECRET = "sk-ant-test-secret-0123456789"
BAD = {**GOOD, "currency": "DOLLARS", "line_items": "none"}


def _request(candidates: list[dict[str, Any]] | None = None) -> AdjudicationRequest:
    return AdjudicationRequest("a" * 64, b"\x89PNG fake", "Invoice INV-1 total 11,90 EUR", SCHEMA.raw,
                               candidates or [GOOD, {**GOOD, "total_amount": 12.0}], ["total_amount"], [])


def _claude(url: str, tmp_path: Path, budget: float | None = None, **kw: Any) -> AnthropicAdjudicator:
    return AnthropicAdjudicator(SCHEMA, "claude-opus-4-7", Budget(budget), ResponseCache(tmp_path / "cache"),
                                base_url=url, max_retries=kw.pop("max_retries", 3), timeout_s=kw.pop("timeout", 5),
                                **kw)


def test_retries_429_and_500_then_answers_through_the_tool(anthropic_server: tuple[str, Script], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = anthropic_server
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    script.steps = [("status", 429), ("status", 500), ("tool", GOOD)]
    result = _claude(url, tmp_path).adjudicate(_request())
    assert result.adjudicated and result.record == GOOD and result.reason == "adjudicated"
    assert len(script.requests) == 3  # the SDK retried twice with backoff
    sent = script.requests[-1]["body"]
    assert sent["tool_choice"] == {"type": "tool", "name": "record"}
    assert sent["tools"][0]["input_schema"]["properties"].keys() == SCHEMA.raw["properties"].keys()
    asked = list(sent["tools"][0]["input_schema"]["properties"])  # totals asked for after the rows, as locally
    assert asked.index("line_items") < asked.index("net_amount") < asked.index("total_amount")
    assert "x-rules" not in sent["tools"][0]["input_schema"]
    assert sent["messages"][0]["content"][0]["type"] == "image"
    assert (result.input_tokens, result.output_tokens) == (2000, 300)
    assert result.cost_usd == pytest.approx(cost_usd("claude-opus-4-7", 2000, 300)) == pytest.approx(0.0175)
    assert script.requests[-1]["key"] == SECRET
    assert SECRET not in json.dumps([p.read_text() for p in (tmp_path / "cache").glob("*.json")])


def test_schema_invalid_answer_is_retried_once_then_kept_local(anthropic_server: tuple[str, Script],
                                                               tmp_path: Path) -> None:
    url, script = anthropic_server
    script.steps = [("tool", BAD), ("tool", GOOD)]
    result = _claude(url, tmp_path).adjudicate(_request())
    assert result.adjudicated and result.calls == 2
    script.steps = [("tool", BAD), ("raw", b"{not json")]
    result = _claude(url, tmp_path).adjudicate(_request([GOOD]))
    assert not result.adjudicated and result.record is None
    assert result.reason.startswith(("invalid_answer", "api_error"))


def test_timeout_keeps_the_local_answer(anthropic_server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = anthropic_server
    script.steps = [("sleep", 2.0), ("sleep", 2.0)]
    result = _claude(url, tmp_path, max_retries=1, timeout=0.5).adjudicate(_request())
    assert not result.adjudicated and result.reason.startswith("api_error: APITimeoutError")


def test_budget_stops_calls_exactly_at_the_cap(anthropic_server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = anthropic_server
    claude = _claude(url, tmp_path)
    requests = [_request([GOOD, {**GOOD, "net_amount": float(i)}]) for i in range(5)]
    worst = min(claude.worst_case_usd(r) for r in requests)
    actual = cost_usd("claude-opus-4-7", 2000, 300)  # what each answer of the server costs
    # room for exactly three calls: after three, the worst case of a fourth no longer fits
    claude.budget = Budget(3 * actual + worst - 1e-6)
    results = [claude.adjudicate(r) for r in requests]
    assert [r.adjudicated for r in results] == [True, True, True, False, False]
    assert [r.reason for r in results[3:]] == ["budget_exhausted", "budget_exhausted"]
    assert len(script.requests) == 3  # no request is sent once the cap is reached
    assert claude.budget.spent == pytest.approx(3 * actual)
    assert claude.budget.limit is not None and claude.budget.spent <= claude.budget.limit


def test_cache_means_a_rerun_never_pays_twice(anthropic_server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = anthropic_server
    first = _claude(url, tmp_path).adjudicate(_request())
    again = _claude(url, tmp_path).adjudicate(_request())
    assert first.adjudicated and again.cached and again.cost_usd == 0.0 and again.record == first.record
    assert len(script.requests) == 1


def test_openai_compatible_path_against_a_loopback_server(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            data = json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": "local",
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": json.dumps(GOOD)}}],
                               "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020}})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        adjudicator = OpenAIAdjudicator(SCHEMA, "local", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
                                        send_image=False, response_format="json_object")
        result = adjudicator.adjudicate(_request())
    finally:
        server.shutdown()
    assert result.adjudicated and result.record == GOOD and (result.input_tokens, result.output_tokens) == (900, 120)
    assert result.cost_usd == 0.0  # a local model costs nothing
    assert seen[0]["response_format"]["type"] == "json_object" and "schema" in seen[0]["response_format"]
    assert isinstance(seen[0]["messages"][1]["content"], str)  # no image for a text-only server


def decide(adjudicator: Any, rules: list[dict[str, Any]], task: dict[str, Any], page: Any, result: Any,
           always: bool = False, below: float = 1.0) -> dict[str, Any]:
    """The adjudication fields of a page's result, the fields that matter found as the worker finds them."""
    from pipeline.adjudicate.page import adjudicate_page
    from pipeline.schema.scope import open_disputes

    open_fields = open_disputes(result.field_confidence, adjudicator.schema.raw, task["page_number"],
                                task["page_count"], below=below)
    return {"adjudicated": False, "adjudication_reason": None,
            **adjudicate_page(adjudicator, rules, task, page, result, open_fields, always, below)}


def test_which_pages_go_to_the_adjudicator(anthropic_server: tuple[str, Script], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.model.base import ModelResult, PageInput

    url, script = anthropic_server
    claude = _claude(url, tmp_path)
    task = {"source_sha256": "b" * 64, "page_number": 2, "page_count": 2}  # last page of a longer one: no rules
    page = PageInput("x.pdf", 1, b"", "text")

    def result(confidence: dict[str, float]) -> ModelResult:
        return ModelResult("ok", dict(GOOD), None, "{}", 1, 1.0, samples=3, field_confidence=confidence,
                           candidates=[GOOD])

    # one of three samples disagrees on a field (2/3 agree): unsure at 1.0 (any disagreement), not at 0.6
    split = result({"total_amount": 2 / 3, "currency": 1.0})
    columns = decide(claude, [], task, page, split)
    assert columns["adjudicated"] and columns["adjudication_reason"].startswith("disputed: total_amount")
    columns = decide(claude, [], task, page, split, below=0.6)
    assert not columns["adjudicated"] and columns["adjudication_reason"] is None
    columns = decide(claude, [], task, page, result({"total_amount": 1 / 3}), below=0.6)
    assert columns["adjudication_reason"] == "disputed: total_amount -> cached"  # same page and candidates
    columns = decide(claude, [], task, page, result({"total_amount": 1.0}))
    assert columns["adjudication_reason"] is None  # all samples agree: stays local
    columns = decide(claude, [], task, page, result({"total_amount": 1.0}), always=True)
    assert columns["adjudication_reason"] == "always -> cached"
    assert len(script.requests) == 1
    # page 1 of 2: its totals are page 2's to give, so a dispute about them alone stays local
    first = {**task, "page_number": 1}
    columns = decide(claude, [], first, page, result({"total_amount": 1 / 3, "net_amount": 0.5}))
    assert columns["adjudication_reason"] is None
    columns = decide(claude, [], first, page, result({"total_amount": 1 / 3, "invoice_number": 2 / 3}))
    assert columns["adjudication_reason"].startswith("disputed: invoice_number ->")
    # page 2 of 2: its totals count, a header it repeats is page 1's to give
    columns = decide(claude, [], task, page, result({"invoice_number": 1 / 3, "buyer.name": 0.5}))
    assert columns["adjudication_reason"] is None


def test_a_page_of_a_longer_invoice_is_checked_row_by_row_not_against_totals(
        anthropic_server: tuple[str, Script], tmp_path: Path) -> None:
    from pipeline.model.base import ModelResult, PageInput
    from pipeline.rules.checks import check_rules

    url, _ = anthropic_server
    claude = _claude(url, tmp_path)
    rules = check_rules(load_schema(INVOICE_SCHEMA).raw)
    page = PageInput("x.pdf", 1, b"", "text")
    rows = [{"description": "a", "quantity": 2.0, "unit_price": 5.0, "amount": 10.0}]
    partial = {**GOOD, "line_items": rows, "net_amount": 999.0}  # this page's lines are not the whole net

    def judge(record: dict[str, Any], page_count: int) -> str | None:
        result = ModelResult("ok", record, None, "{}", 1, 1.0, samples=1, candidates=[record])
        task = {"source_sha256": f"{page_count}{len(rows)}" * 32, "page_number": 1, "page_count": page_count}
        return decide(claude, rules, task, page, result)["adjudication_reason"]

    assert judge(partial, page_count=2) is None  # sums wait for the whole document
    assert (judge(partial, page_count=1) or "").startswith("rules: lines_sum_to_net")
    rows.append({"description": "b", "quantity": 3.0, "unit_price": 5.0, "amount": 16.0})  # 3 x 5 is not 16
    assert judge({**partial, "line_items": rows}, page_count=2) is None  # a warning: discounts break it too
    assert (judge({**partial, "due_date": "2000-01-01"}, page_count=2) or "").startswith(
        "rules: due_not_before_issue")  # a rule of one page's own fields: checked on every page


def test_identical_samples_are_sent_once_with_their_count() -> None:
    request = _request([GOOD, GOOD, {**GOOD, "total_amount": 12.0}])
    assert request.distinct_candidates() == [{"samples": 2, "answer": GOOD},
                                             {"samples": 1, "answer": {**GOOD, "total_amount": 12.0}}]
    text = request.user_text()
    assert "3 local samples, 2 different" in text
    sent = text.split("how many gave each):\n", 1)[1].split("\n\nDisputed fields", 1)[0]
    assert json.loads(sent) == request.distinct_candidates()  # GOOD goes to the adjudicator once


def test_a_response_cache_that_cannot_be_written_costs_the_page_not_the_run(
        anthropic_server: tuple[str, Script], tmp_path: Path, sample_dir: Path) -> None:
    from pipeline.model.base import Backend, Completion, PageInput
    from pipeline.run.page import PageSteps, process_page
    from pipeline.screen.read import LazyOcr

    class Disputed(Backend):
        """Two samples that disagree on the total: the page goes to the adjudicator."""

        name, sha256, needs_text = "disputed", "0" * 64, True

        def __init__(self) -> None:
            super().__init__(SCHEMA, retries=0, samples=2, dual_view=False)

        def execute(self, page: PageInput, attempt: int) -> Completion:
            return Completion(json.dumps({**GOOD, "total_amount": 11.9 + attempt}))

    url, _ = anthropic_server
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    steps = PageSteps(SCHEMA.raw, 72, 1_000_000, LazyOcr(), _claude(url, tmp_path), [], False, 1.0)
    task = {"source_path": str(sample_dir / "invoice-001-classic.pdf"), "source_sha256": "c" * 64,
            "page_number": 1, "page_count": 1}
    result = process_page(Disputed(), task, steps)
    assert result.status == "error" and (result.error or "").startswith("internal_error: ")
