"""Several samples, one coherent record: the vote does not break the rules that every sample kept."""

from __future__ import annotations

from pipeline.consensus.vote import anchored, consensus
from pipeline.rules.checks import check_rules, rule_failures
from pipeline.rules.cohere import cohere, tied_fields
from pipeline.rules.settle import settle_page
from pipeline.schema.compiled import load_schema
from pipeline.schema.scope import open_disputes, supplied_disputed

from .conftest import INVOICE_SCHEMA

SCHEMA = load_schema(INVOICE_SCHEMA).raw
RULES = check_rules(SCHEMA)


def _sample(net: float, tax: float, total: float, rows: list[float], number: str = "R-1") -> dict:
    return {"invoice_number": number, "issue_date": "2026-03-01", "due_date": None, "currency": "EUR",
            "seller": {"name": "ACME GmbH", "vat_id": None, "address": None},
            "buyer": {"name": "Beta AG", "vat_id": None, "address": None},
            "net_amount": net, "tax_amount": tax, "total_amount": total,
            "line_items": [{"description": f"item {i}", "quantity": 1.0, "unit_price": a, "amount": a}
                           for i, a in enumerate(rows)]}


# each sample adds up; the field-by-field vote takes net and tax of the first, total of the other two
SAMPLES = [_sample(100.0, 19.0, 119.0, [100.0]), _sample(100.0, 20.0, 120.0, [100.0]),
           _sample(101.0, 19.0, 120.0, [101.0])]


def test_the_vote_can_break_a_rule_that_every_sample_keeps() -> None:
    voted = consensus(SAMPLES, SCHEMA)
    assert (voted.record["net_amount"], voted.record["tax_amount"], voted.record["total_amount"]) == (100, 19, 120)
    assert "net_plus_tax_is_total" in rule_failures(RULES, voted.record)
    assert all("net_plus_tax_is_total" not in rule_failures(RULES, s) for s in SAMPLES)


def test_the_rules_fields_are_taken_together_from_one_sample_with_their_own_agreement() -> None:
    voted = consensus(SAMPLES, SCHEMA)
    result = cohere(voted.record, voted.confidence, SAMPLES, SCHEMA, RULES, lambda r: r)
    assert result.fields == ["net_amount", "tax_amount", "total_amount"]  # the rows add up as voted: kept
    record = result.record
    assert (record["net_amount"], record["tax_amount"], record["total_amount"]) == (100, 19, 119)  # sample 1
    assert rule_failures(RULES, record) == []
    # the agreement is the sample's own: 2 of 3 read its net and tax, 1 of 3 its total
    assert result.confidence["net_amount"] == 2 / 3 and result.confidence["total_amount"] == 1 / 3
    assert result.confidence["invoice_number"] == 1.0 and result.confidence["line_items[0].amount"] == 2 / 3
    assert result.alternatives["total_amount"] == [120.0]
    assert result.note is not None and "sample 1 of 3" in result.note and "net_plus_tax_is_total" in result.note
    assert result.covers("net_amount") and not result.covers("line_items[0].amount")


def test_the_sample_most_samples_agree_with_wins_and_nothing_is_invented() -> None:
    odd = _sample(100.0, 9.5, 109.5, [100.0])
    twice = [_sample(100.0, 19.0, 119.0, [100.0]), _sample(100.0, 19.0, 120.0, [100.0])]
    samples = [odd, *twice, twice[0]]  # the greedy one adds up alone; two others read 100 + 19 = 119
    mixed = {**odd, "total_amount": 120.0}
    result = cohere(mixed, {"total_amount": 0.5}, samples, SCHEMA, RULES, lambda r: r)
    assert (result.record["tax_amount"], result.record["total_amount"]) == (19.0, 119.0)
    assert "sample 2 of 4" in (result.note or "")
    # no sample keeps the rules: the vote stays, the rules go on failing
    broken = [_sample(100.0, 19.0, 120.0, [100.0]), _sample(100.0, 18.0, 120.0, [100.0])]
    kept = cohere(broken[0], {"tax_amount": 0.5}, broken, SCHEMA, RULES, lambda r: r)
    assert kept.note is None and kept.record is broken[0] and kept.confidence == {"tax_amount": 0.5}
    # a record that keeps the rules is left alone, and one sample has nothing to choose from
    assert cohere(SAMPLES[0], {}, SAMPLES, SCHEMA, RULES, lambda r: r).note is None
    assert cohere(mixed, {}, [mixed], SCHEMA, RULES, lambda r: r).note is None


def test_tied_fields_come_from_the_rules_not_the_names() -> None:
    assert tied_fields(RULES, ["due_not_before_issue"]) == ["due_date", "issue_date"]
    assert tied_fields(RULES, ["lines_sum_to_net"]) == ["allowance_total", "charge_total", "line_items", "net_amount",
                                                        "tax_amount", "total_amount"]
    assert tied_fields(RULES, []) == []


def test_anchored_keeps_one_samples_values_and_counts_who_agrees() -> None:
    reading = anchored(SAMPLES, 2, SCHEMA)
    assert reading.record == SAMPLES[2]
    assert reading.confidence["net_amount"] == 1 / 3 and reading.confidence["total_amount"] == 2 / 3
    assert reading.confidence["line_items.length"] == 1.0 and reading.alternatives["net_amount"] == [100.0]
    nothing = {**SAMPLES[0], "seller": None}
    alone = anchored([nothing, SAMPLES[0], SAMPLES[1]], 0, SCHEMA)
    assert alone.record["seller"] is None and alone.confidence["seller"] == 1 / 3


def test_a_settled_page_keeps_the_rules_and_says_so() -> None:
    voted = consensus(SAMPLES, SCHEMA)
    settled = settle_page(voted.record, voted.confidence, SCHEMA, RULES, [[]], 1, 1, SAMPLES, below=0.6)
    assert rule_failures(RULES, settled.record) == [] and settled.cohered is not None
    assert settled.repairs == [settled.cohered.note]
    assert settled.open_fields == ["total_amount"]  # 2 of 3 agree on the rest: a majority is trusted at 0.6
    # page 1 of 2 does not hold the totals rules: nothing to keep together
    page = settle_page(voted.record, voted.confidence, SCHEMA, RULES, [[]], 1, 2, SAMPLES, below=0.6)
    assert page.cohered is None and page.record == voted.record


def test_a_majority_is_trusted_below_the_threshold_and_any_doubt_above_it() -> None:
    confidence = {"invoice_number": 2 / 3, "issue_date": 0.5, "currency": 1.0}
    assert open_disputes(confidence, SCHEMA, 1, 1) == ["invoice_number", "issue_date"]
    assert open_disputes(confidence, SCHEMA, 1, 1, below=0.6) == ["issue_date"]
    assert open_disputes(confidence, SCHEMA, 1, 1, ["currency"], below=0.6) == ["currency", "issue_date"]
    pages = [{"page_number": 1, "page_count": 2, "_record": {"total_amount": 5.0},
              "field_confidence": {"total_amount": 2 / 3}},
             {"page_number": 2, "page_count": 2, "_record": {"total_amount": None}, "field_confidence": {}}]
    assert supplied_disputed(pages, SCHEMA) == ["p1:total_amount"]
    assert supplied_disputed(pages, SCHEMA, below=0.6) == []
