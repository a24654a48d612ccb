"""Disputed pages go to the (loopback) Anthropic API under a budget; the rest stays local."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.adjudicate.base import cost_usd
from pipeline.cli import main
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.sink.dataset import manifests, read_table

from .conftest import INVOICE_SCHEMA
from .fake_anthropic import GOOD, Script


def test_sampling_then_budgeted_adjudication(tmp_path: Path, four_pages: Path, tiny_vlm: TinyVLM, ray_local: None,
                                             anthropic_server: tuple[str, Script],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = anthropic_server
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-e2e-secret")
    inputs = four_pages
    per_call = cost_usd("claude-opus-4-7", 2000, 300)
    out = tmp_path / "out"
    args = ["run", "--schema", str(INVOICE_SCHEMA), str(inputs), "-o", str(out), "--model", str(tiny_vlm.model),
            "--mmproj", str(tiny_vlm.mmproj), "--samples", "5", "--max-tokens", "1024", "--workers", "2",
            "--threads", "1", "--adjudicator", "anthropic", "--adjudicator-url", url,
            "--api-cache", str(tmp_path / "cache"),
            "--adjudicate-below", "1.0"]  # any disagreement: the tiny model's 5 samples rarely lack a majority
    # a call's worst case (4,096 answer tokens and its input) is over 0.12 USD for these pages and an
    # answer costs 0.0175: 0.13 allows exactly one call
    result = CliRunner().invoke(main, [*args, "--budget-usd", "0.13"])
    assert result.exit_code == 0, result.output
    pages = read_table(out, "pages").to_pylist()
    sent = [p for p in pages if p["adjudication_reason"]]
    assert sent, "the tiny model's samples should disagree somewhere"
    adjudicated = [p for p in pages if p["adjudicated"]]
    assert len(adjudicated) == 1 and len(script.requests) == 1
    page = adjudicated[0]
    assert page["invoice_number"] == GOOD["invoice_number"] and page["total_amount"] == GOOD["total_amount"]
    assert page["adjudicator_model"] == "claude-opus-4-7" and page["api_cost_usd"] == pytest.approx(per_call)
    assert (page["api_input_tokens"], page["api_output_tokens"]) == (2000, 300)
    # the API's record is looked up on the page too: values printed nowhere (a PDF page of the
    # generated samples does not print the fake's "INV-1") flag it, a page without words cannot
    assert page["needs_review"] is bool(page["ungrounded_fields"])
    # looked up for the adjudicator's record, not the local one (none at all on the PNG: no text layer)
    sources = dict(page["field_sources"] or [])
    assert bool(sources) == page["source_path"].endswith(".pdf")
    assert sources.get("invoice_number", {"text": None})["text"] in (None, GOOD["invoice_number"])
    assert page["ungrounded_fields"] == sorted(k for k, s in sources.items() if s["match"] == "none")
    refused = [p for p in sent if not p["adjudicated"]]
    assert all(p["adjudication_reason"].endswith("budget_exhausted") and p["needs_review"] for p in refused)
    manifest = manifests(out)[-1]
    assert manifest["adjudication"]["pages_adjudicated"] == 1
    assert manifest["adjudication"]["cost_usd"] == pytest.approx(per_call)
    assert manifest["adjudication"]["cost_usd"] <= 0.13
    assert "sk-ant-e2e-secret" not in json.dumps(manifest)
    docs = read_table(out, "documents").to_pylist()
    assert sum(d["adjudicated"] for d in docs) == 1
    assert sum(d["api_cost_usd"] for d in docs) == pytest.approx(per_call)

    # a rerun with the cache pays nothing for the page already adjudicated
    result = CliRunner().invoke(main, [*args, "--budget-usd", "0.13", "-o", str(tmp_path / "out2")])
    assert result.exit_code == 0, result.output
    again = read_table(tmp_path / "out2", "pages").to_pylist()
    cached = [p for p in again if p["adjudication_reason"] and p["adjudication_reason"].endswith("cached")]
    assert len(cached) == 1 and cached[0]["api_cost_usd"] == 0.0

    # --adjudicate always: every page goes to the API (the all-API baseline of the benchmark)
    result = CliRunner().invoke(main, [*args, "--samples", "1", "--adjudicate", "always", "-o", str(tmp_path / "all")])
    assert result.exit_code == 0, result.output
    every = read_table(tmp_path / "all", "pages").to_pylist()
    assert all(p["adjudicated"] for p in every) and len(every) == 4
    assert all("always" in p["adjudication_reason"] or "disputed" in p["adjudication_reason"]
               or "rules" in p["adjudication_reason"] for p in every)
