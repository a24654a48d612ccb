"""Business rules from the schema's x-rules block."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import SchemaError
from pipeline.rules.checks import check_rules, rule_failures

from .conftest import INVOICE_SCHEMA

RULES = check_rules(json.loads(INVOICE_SCHEMA.read_text()))
GOOD = {
    "issue_date": "2026-01-01", "due_date": "2026-01-31", "currency": "EUR",
    "net_amount": 10.0, "tax_amount": 1.9, "total_amount": 11.9,
    "line_items": [{"quantity": 2.0, "unit_price": 3.0, "amount": 6.0},
                   {"quantity": 1.0, "unit_price": 4.0, "amount": 4.0}],
}


def test_a_consistent_invoice_breaks_no_rule() -> None:
    assert rule_failures(RULES, GOOD) == []


@pytest.mark.parametrize("change, broken", [
    ({"net_amount": 11.0, "total_amount": 12.9}, "lines_sum_to_net"),
    ({"tax_amount": 2.9}, "net_plus_tax_is_total"),
    ({"line_items": [{"quantity": 2.0, "unit_price": 3.0, "amount": 7.0},
                     {"quantity": 1.0, "unit_price": 3.0, "amount": 3.0}]}, "quantity_times_price_is_amount"),
    ({"due_date": "2025-12-01"}, "due_not_before_issue"),
    ({"currency": "XXX"}, "currency_is_iso4217"),
])
def test_each_rule_is_reported_by_name(change: dict, broken: str) -> None:
    assert broken in rule_failures(RULES, {**GOOD, **change})


def test_missing_inputs_skip_a_rule_and_lines_may_sum_to_the_total() -> None:
    assert rule_failures(RULES, {**GOOD, "tax_amount": None, "due_date": None, "currency": None}) == []
    no_tax = {**GOOD, "net_amount": None, "tax_amount": None, "total_amount": 10.0}
    assert rule_failures(RULES, no_tax) == []


def test_malformed_rules_are_refused() -> None:
    with pytest.raises(SchemaError, match="kind"):
        check_rules({"x-rules": [{"name": "x", "kind": "median"}]})
    with pytest.raises(SchemaError, match="lacks"):
        check_rules({"x-rules": [{"name": "x", "kind": "add", "fields": ["a"]}]})
    with pytest.raises(SchemaError, match="twice"):
        check_rules({"x-rules": [{"name": "x", "kind": "in", "field": "a", "values": []}] * 2})
    with pytest.raises(SchemaError, match="severity"):
        check_rules({"x-rules": [{"name": "x", "kind": "in", "field": "a", "values": [], "severity": "fatal"}]})
    with pytest.raises(SchemaError, match="per"):
        check_rules({"x-rules": [{"name": "x", "kind": "product", "items": "r", "fields": ["a"], "equals": "b",
                                  "per": [0]}]})
    with pytest.raises(SchemaError, match="'plus' is a list of field names, on a sum rule only"):
        check_rules({"x-rules": [{"name": "x", "kind": "add", "fields": ["a"], "equals": "b", "plus": ["c"]}]})
    with pytest.raises(SchemaError, match="'minus'"):
        check_rules({"x-rules": [{"name": "x", "kind": "sum", "items": "r", "field": "a", "equals": "b",
                                  "minus": "c"}]})
    with pytest.raises(SchemaError, match="'repair' names one of its fields, on an order rule only"):
        check_rules({"x-rules": [{"name": "x", "kind": "order", "fields": ["a", "b"], "repair": "c"}]})


def test_prices_per_base_quantity_and_warnings() -> None:
    from pipeline.rules.checks import flagging

    per_hundred = {**GOOD, "line_items": [{"quantity": 10000.0, "unit_price": 0.052, "amount": 5.2},
                                          {"quantity": 1.0, "unit_price": 4.8, "amount": 4.8}]}
    assert "quantity_times_price_is_amount" not in rule_failures(RULES, per_hundred)  # 10000 x 0.052 / 100
    assert flagging(RULES, ["quantity_times_price_is_amount", "lines_sum_to_net"]) == ["lines_sum_to_net"]


def test_rows_that_restate_the_totals_are_dropped_only_when_the_record_proves_it() -> None:
    from pipeline.rules.checks import drop_restated_totals

    restated = [{"description": "Subtotal", "quantity": 10.0, "unit_price": 10.0, "amount": 10.0},
                {"description": "VAT", "quantity": 1.9, "unit_price": 1.9, "amount": 1.9},
                {"description": "Total due", "quantity": 11.9, "unit_price": 11.9, "amount": 11.9}]
    read = {**GOOD, "line_items": GOOD["line_items"] + restated}
    assert "lines_sum_to_net" in rule_failures(RULES, read)
    assert drop_restated_totals(RULES, read) == GOOD
    # no subtotal line and a wrong net: nothing proves what the last rows are, so they stay
    unproved = {**GOOD, "net_amount": 9.0, "line_items": GOOD["line_items"] + restated[1:]}
    assert drop_restated_totals(RULES, unproved) == unproved
    # a real last line that happens to cost as much as the tax stays: the rows already add up
    real = {**GOOD, "tax_amount": 4.0, "total_amount": 14.0}
    assert drop_restated_totals(RULES, real) == real
    # the page's own subtotal proves the cut even when the model then took the net from a line:
    # the restated rows go, the wrong net is left for the rules to report
    misread = {**read, "net_amount": 6.0}
    mended = drop_restated_totals(RULES, misread)
    assert mended["line_items"] == GOOD["line_items"] and "lines_sum_to_net" in rule_failures(RULES, mended)
    # two real lines of the same amount and a misread net: a subtotal alone proves nothing
    twins = {**GOOD, "net_amount": 3.0, "line_items": [{"amount": 5.0}, {"amount": 5.0}]}
    assert drop_restated_totals(RULES, twins) == twins
    # a one-line invoice whose line is the net is left alone
    one = {**GOOD, "line_items": [{"amount": 10.0}]}
    assert drop_restated_totals(RULES, one) == one


def test_a_record_rid_of_restated_rows_must_still_validate() -> None:
    from pipeline.schema.compiled import compile_schema

    raw = json.loads(INVOICE_SCHEMA.read_text())
    rows = [{"description": d, "quantity": None, "unit_price": None, "amount": a}
            for d, a in (("a", 6.0), ("b", 4.0), ("Subtotal", 10.0), ("VAT", 1.9), ("Total", 11.9))]
    party = {"name": None, "vat_id": None, "address": None}
    record = {**dict.fromkeys(raw["properties"]), "seller": party, "buyer": party, "net_amount": 10.0,
              "tax_amount": 1.9, "total_amount": 11.9, "line_items": rows}
    assert len(compile_schema(raw).drop_restated_rows(record)[0]["line_items"]) == 2
    raw["properties"]["line_items"]["minItems"] = 3
    assert compile_schema(raw).drop_restated_rows(record) == (record, 0)  # two rows would not validate: keep the answer


def test_a_due_date_before_the_issue_date_takes_the_one_printed_date_that_keeps_the_order() -> None:
    from pipeline.rules.order import repair_order

    early = {**GOOD, "issue_date": "2018-07-13", "due_date": "2018-07-11"}  # the service period's end
    printed = ["2018-07-09", "2018-07-11", "2018-07-13", "2018-08-12", "2018-03-15"]
    fixed, notes = repair_order(early, RULES, printed)
    assert fixed["due_date"] == "2018-08-12" and rule_failures(RULES, fixed) == []
    assert notes == ["due_date: 2018-07-11 -> 2018-08-12 (due_not_before_issue: the one printed date that keeps "
                     "the order)"]
    # two that would do, or none: nothing proves which, and the date the pages disprove goes
    fixed, notes = repair_order(early, RULES, [*printed, "2018-09-01"])
    assert fixed["due_date"] is None
    assert notes[0].endswith("(due_not_before_issue: 2 printed dates would keep the order)")
    assert repair_order(early, RULES, ["2018-07-13"])[0]["due_date"] is None  # the issue date itself proves nothing
    assert repair_order(GOOD, RULES, printed) == (GOOD, [])  # the order holds: nothing to do


def test_rows_that_add_up_to_the_cent_vouch_for_their_number_and_amounts() -> None:
    from pipeline.rules.checks import proven_by_sums

    assert proven_by_sums(RULES, GOOD) == {"line_items.length", "line_items[0].amount", "line_items[1].amount"}
    off = {**GOOD, "net_amount": 10.02, "total_amount": 11.92}  # within the rule's tolerance, not to the cent
    assert rule_failures(RULES, off) == [] and proven_by_sums(RULES, off) == set()
