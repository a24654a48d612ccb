"""Merging page records into one document record."""

from __future__ import annotations

import json

from pipeline.merge import merge_pages

from .conftest import INVOICE_SCHEMA

SCHEMA = json.loads(INVOICE_SCHEMA.read_text())


def _item(desc: str, qty: float | None = 1.0, price: float | None = 2.0, amount: float | None = 2.0) -> dict:
    return {"description": desc, "quantity": qty, "unit_price": price, "amount": amount}


def _page(**fields: object) -> dict:
    base = {k: None for k in SCHEMA["properties"]}
    base["line_items"] = []
    base.update(fields)
    return base


def test_header_from_first_totals_from_last_items_concatenated() -> None:
    page1 = _page(invoice_number="INV-1", issue_date="2026-01-02", currency="EUR",
                  seller={"name": "ACME", "vat_id": None, "address": None}, total_amount=5.0,
                  line_items=[_item("a"), _item("b")])
    page2 = _page(invoice_number="INV-1-cont", seller={"name": None, "vat_id": "DE1", "address": "Road 1"},
                  net_amount=10.0, tax_amount=1.9, total_amount=11.9,
                  line_items=[_item("Description", None, None, None), _item("b"), _item("c")])
    merged = merge_pages([page1, page2], SCHEMA)
    assert merged["invoice_number"] == "INV-1"
    assert merged["issue_date"] == "2026-01-02" and merged["currency"] == "EUR"
    assert merged["seller"] == {"name": "ACME", "vat_id": "DE1", "address": "Road 1"}
    assert (merged["net_amount"], merged["tax_amount"], merged["total_amount"]) == (10.0, 1.9, 11.9)
    # repeated header row dropped, the row carried over the page break kept once
    assert [i["description"] for i in merged["line_items"]] == ["a", "b", "c"]


def test_single_page_is_unchanged() -> None:
    page = _page(invoice_number="X", line_items=[_item("a")], total_amount=2.0,
                 seller={"name": "S", "vat_id": None, "address": None})
    merged = merge_pages([page], SCHEMA)
    assert merged["invoice_number"] == "X" and merged["line_items"] == [_item("a")]
    assert merged["buyer"] is None and merged["total_amount"] == 2.0
