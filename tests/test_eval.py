"""Scoring a documents table against ground truth."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.eval.score import EvalReport, evaluate, same, score_value
from pipeline.schema.compiled import load_schema
from pipeline.sink.parquet import documents_schema, rows_to_table, write_parquet_atomic

from .conftest import INVOICE_SCHEMA

TRUTH = {
    "invoice_number": "INV-1", "issue_date": "2026-03-23", "due_date": None,
    "seller": {"name": "ACME GmbH", "vat_id": "DE1", "address": "Road 1"},
    "buyer": {"name": "Buyer SA", "vat_id": None, "address": "Rue 2"},
    "currency": "EUR", "net_amount": 10.0, "tax_amount": 1.9, "total_amount": 11.9,
    "line_items": [{"description": "a", "quantity": 1.0, "unit_price": 4.0, "amount": 4.0},
                   {"description": "b", "quantity": 2.0, "unit_price": 3.0, "amount": 6.0}],
}


def test_same_compares_by_schema_type() -> None:
    date, amount = {"type": ["string", "null"], "format": "date"}, {"type": ["number", "null"]}
    assert same("23. März 2026", "2026-03-23", date)
    assert not same("23. März 2026", "2026-03-23", {"type": "string"})  # text is text, whatever it looks like
    assert same(17510.14, "17.510,14 €", amount) and same(1.0, 1.004, amount) and not same(1.0, 1.02, amount)
    assert same("ACME  GmbH.", "acme gmbh", {"type": "string"}) and not same("ACME", None)
    assert same("€", "EUR", {"type": "string", "x-normalize": "currency"})
    # a field the schema does not know: the values' own types decide
    assert same(17510.14, "17.510,14 €") and same("ACME  GmbH.", "acme gmbh")


def test_line_items_are_paired_by_best_assignment() -> None:
    report = EvalReport()
    pred = dict(TRUTH, line_items=list(reversed(TRUTH["line_items"])))
    score_value(pred, TRUTH, "$", report)
    assert report.overall.fp == 0 and report.overall.fn == 0


def test_wrong_missing_and_extra_values() -> None:
    report = EvalReport()
    pred = json.loads(json.dumps(TRUTH))
    pred["invoice_number"] = "INV-2"  # wrong: fp + fn
    pred["currency"] = None  # missing: fn
    pred["due_date"] = "2026-04-01"  # extra: fp
    pred["line_items"] = pred["line_items"][:1]  # one row missing: 4 fn
    score_value(pred, TRUTH, "$", report)
    f = report.fields
    assert (f["$.invoice_number"].fp, f["$.invoice_number"].fn) == (1, 1)
    assert f["$.currency"].fn == 1 and f["$.due_date"].fp == 1
    assert sum(f[f"$.line_items.{k}"].fn for k in ("description", "quantity", "unit_price", "amount")) == 4
    assert 0 < report.overall.f1 < 1


def test_partial_truth_scores_only_what_it_states() -> None:
    """Real truth states what its source states: an absent key is unknown (not scored), a stated
    null is "stated empty" (a value there is wrong), rows are scored on the keys they state."""
    truth = {"invoice_number": "INV-1", "due_date": None, "seller": {"name": "ACME"},
             "line_items": [{"amount": 4.0}, {"amount": 6.0}]}
    pred = json.loads(json.dumps(TRUTH))  # states much more than the truth knows
    pred["due_date"] = "2026-04-01"
    report = EvalReport()
    score_value(pred, truth, "$", report, load_schema(INVOICE_SCHEMA).raw, load_schema(INVOICE_SCHEMA).raw)
    f = report.fields
    assert set(f) == {"$.invoice_number", "$.due_date", "$.seller.name", "$.line_items.amount"}
    assert f["$.due_date"].fp == 1 and f["$.due_date"].accuracy == 0.0
    assert f["$.line_items.amount"].tp == 2 and f["$.line_items.amount"].fp == 0
    assert f["$.invoice_number"].accuracy == 1.0 and f["$.seller.name"].correct == 1


def test_lenient_where_truth_is_loose() -> None:
    schema = load_schema(INVOICE_SCHEMA).raw
    report = EvalReport()
    truth = {"total_amount": 11.9, "seller": {"name": "Coolblue", "address": "Weena 664, Rotterdam"}, "buyer": {}}
    pred = {"total_amount": -11.9, "seller": {"name": "Coolblue B.V.", "address": "Weena 664 3012 CN Rotterdam"}}
    score_value(pred, truth, "$", report, schema, schema)
    assert report.overall.fp == 0 and report.overall.fn == 0  # a credit note's sign, a brand, an address
    score_value({"invoice_number": "INV-2"}, {"invoice_number": "INV-1"}, "$", report, schema, schema)
    assert report.fields["$.invoice_number"].fn == 1  # one-word identifiers are compared whole


def _write_documents(out: Path, records: dict[str, dict]) -> None:
    schema = load_schema(INVOICE_SCHEMA)
    rows = [{**record, "run_id": "r", "source_path": f"/in/{stem}.pdf", "source_sha256": "0" * 64,
             "model_name": "m", "model_sha256": "0" * 64, "prompt_version": "p", "schema_sha256": "s",
             "status": "ok", "created_at": __import__("datetime").datetime.now()} for stem, record in records.items()]
    write_parquet_atomic(out / "documents" / "run_date=2026-01-01" / "part-r-00001.parquet",
                         rows_to_table(rows, documents_schema(schema.raw)))


def test_evaluate_and_cli(tmp_path: Path) -> None:
    truth = tmp_path / "truth"
    truth.mkdir()
    (truth / "a.json").write_text(json.dumps(TRUTH))
    (truth / "b.json").write_text(json.dumps(TRUTH))
    out = tmp_path / "out"
    out.mkdir()
    _write_documents(out, {"a": TRUTH})  # b is missing from the output
    report = evaluate(truth, out)
    assert report.documents == 2 and report.documents_missing == 1
    assert report.overall.precision == 1.0 and report.overall.recall == pytest.approx(0.5)
    result = CliRunner().invoke(main, ["eval", "--truth", str(truth), str(out)])
    assert result.exit_code == 0, result.output
    assert "OVERALL" in result.output and "line_items.amount" in result.output
    data = json.loads((out / "eval.json").read_text())
    assert data["overall"]["recall"] == 0.5 and data["documents_missing"] == 1
    # b has no record: a real error, and a missing document counts as flagged; a is right and not flagged
    assert data["flags"] == {"documents": 2, "flagged": 1, "wrong": 1, "flagged_wrong": 1, "share_flagged": 0.5,
                             "precision": 1.0, "recall": 1.0}
    assert "flag precision 1.0" in result.output and "HEADER" in result.output
    assert date.fromisoformat(TRUTH["issue_date"])


def test_eval_without_a_run_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text("{}")
    result = CliRunner().invoke(main, ["eval", "--truth", str(tmp_path), str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no documents found" in result.output
