"""Batch mode: hard pages go to one Message Batch (loopback Messages API) after the local pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.adjudicate.api import AnthropicAdjudicator
from pipeline.adjudicate.base import ResponseCache, cost_usd
from pipeline.adjudicate.batch import recover
from pipeline.cli import main
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.schema.compiled import load_schema
from pipeline.sink.dataset import manifests, read_table

from .conftest import INVOICE_SCHEMA
from .fake_anthropic import GOOD, Script


def _args(tiny_vlm: TinyVLM, inputs: Path, out: Path, url: str, cache: Path) -> list[str]:
    return ["run", "--schema", str(INVOICE_SCHEMA), str(inputs), "-o", str(out), "--model", str(tiny_vlm.model),
            "--mmproj", str(tiny_vlm.mmproj), "--samples", "1", "--max-tokens", "512", "--workers", "2",
            "--threads", "1", "--adjudicator", "anthropic", "--adjudicator-url", url, "--adjudicate", "always",
            "--adjudicate-mode", "batch", "--batch-poll-s", "0.05", "--api-cache", str(cache)]


def test_one_batch_after_the_local_pass(tmp_path: Path, four_pages: Path, tiny_vlm: TinyVLM, ray_local: None,
                                        anthropic_server: tuple[str, Script],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = anthropic_server
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-batch-secret")
    script.steps = [("errored", None)]  # the first result of the batch fails; the others succeed
    out = tmp_path / "out"
    result = CliRunner().invoke(main, _args(tiny_vlm, four_pages, out, url, tmp_path / "cache"))
    assert result.exit_code == 0, result.output
    assert len(script.batches) == 1 and script.polls_until_ended == 2
    assert [r["path"].split("?")[0] for r in script.requests] == ["/v1/messages/batches"]  # no page-by-page calls
    sent = script.requests[0]["body"]["requests"]
    assert len(sent) == 4 and all(r["params"]["tool_choice"] == {"type": "tool", "name": "record"} for r in sent)
    assert len({r["custom_id"] for r in sent}) == 4
    pages = read_table(out, "pages").to_pylist()
    assert len(pages) == 4
    done = [p for p in pages if p["adjudicated"]]
    failed = [p for p in pages if not p["adjudicated"]]
    assert len(done) == 3 and len(failed) == 1
    assert _outcome(failed[0]) == "batch_errored"
    assert failed[0]["api_cost_usd"] == 0.0 and failed[0]["status"] == "ok"  # the local answer is kept
    half = cost_usd("claude-opus-4-7", 2000, 300) / 2
    for p in done:
        assert _outcome(p) == "adjudicated (batch)"
        assert p["invoice_number"] == GOOD["invoice_number"] and p["api_cost_usd"] == pytest.approx(half)
    manifest = manifests(out)[-1]
    assert manifest["adjudication"]["pages_adjudicated"] == 3
    assert manifest["adjudication"]["cost_usd"] == pytest.approx(3 * half)
    assert "sk-ant-batch-secret" not in json.dumps(manifest)
    assert read_table(out, "documents").num_rows == 4
    assert not list((out / "_state" / "batches").iterdir()), "batch bookkeeping left behind"

    # a rerun (new output, same cache) answers 3 pages from the cache and batches only the failed one
    again = CliRunner().invoke(main, _args(tiny_vlm, four_pages, tmp_path / "out2", url, tmp_path / "cache"))
    assert again.exit_code == 0, again.output
    assert len(script.batches) == 2 and len(script.batches["msgbatch_0002"]["requests"]) == 1
    reasons = sorted(_outcome(p) for p in read_table(tmp_path / "out2", "pages").to_pylist())
    assert reasons == ["adjudicated (batch)"] + ["cached"] * 3


def test_batch_respects_the_budget(tmp_path: Path, four_pages: Path, tiny_vlm: TinyVLM, ray_local: None,
                                   anthropic_server: tuple[str, Script],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = anthropic_server
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    out = tmp_path / "out"
    # worst case per request ~0.115 USD at full price, half in a batch: 0.12 covers two requests
    result = CliRunner().invoke(main, [*_args(tiny_vlm, four_pages, out, url, tmp_path / "cache"),
                                       "--budget-usd", "0.12"])
    assert result.exit_code == 0, result.output
    assert len(script.batches["msgbatch_0001"]["requests"]) == 2
    reasons = sorted(_outcome(p) for p in read_table(out, "pages").to_pylist())
    assert reasons == ["adjudicated (batch)"] * 2 + ["budget_exhausted"] * 2
    assert manifests(out)[-1]["adjudication"]["cost_usd"] <= 0.12


def test_a_refused_batch_keeps_every_local_answer(tmp_path: Path, four_pages: Path, tiny_vlm: TinyVLM,
                                                  ray_local: None, anthropic_server: tuple[str, Script],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = anthropic_server
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    script.steps = [("batch_status", 400)]
    out = tmp_path / "out"
    result = CliRunner().invoke(main, _args(tiny_vlm, four_pages, out, url, tmp_path / "cache"))
    assert result.exit_code == 0, result.output
    pages = read_table(out, "pages").to_pylist()
    assert len(pages) == 4 and not any(p["adjudicated"] for p in pages)
    assert all(_outcome(p).startswith("api_error: BadRequestError") for p in pages)
    assert manifests(out)[-1]["adjudication"]["cost_usd"] == 0.0


def test_a_killed_runs_batch_is_recovered_into_the_cache(tmp_path: Path, anthropic_server: tuple[str, Script],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = anthropic_server
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    script.polls_until_ended = 0
    adj = AnthropicAdjudicator(load_schema(INVOICE_SCHEMA), "claude-opus-4-7", base_url=url,
                               cache=ResponseCache(tmp_path / "cache"))
    batch = adj.client.messages.batches.create(requests=[{"custom_id": "p000000-abc", "params": {
        "model": "claude-opus-4-7", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}}])
    state = tmp_path / "out" / "_state"
    (state / "batches").mkdir(parents=True)
    (state / "batches" / f"{batch.id}.batch.json").write_text(json.dumps(
        {"batch_id": batch.id, "run_id": "killed", "keys": {"p000000-abc": "cachekey1"}}))
    (state / "batches" / "killed.requests.jsonl").write_text("{}\n")
    assert recover(adj, state) == [batch.id]
    assert adj.cache.get("cachekey1")["record"]["invoice_number"] == GOOD["invoice_number"]  # type: ignore[index]
    assert not list((state / "batches").iterdir())


def _outcome(page: dict[str, Any]) -> str:
    """What the API did with a page sent under --adjudicate always (why it was sent comes first:
    "always", or the tiny model's noise in doubt)."""
    why, outcome = page["adjudication_reason"].split(" -> ", 1)
    assert why == "always" or why.startswith("disputed: ")
    return str(outcome)
