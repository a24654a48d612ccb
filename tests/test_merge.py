"""Merging page records into one document record."""

from __future__ import annotations

import json

from pipeline.merge.pages import merge_pages

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


class _Writer:
    def add_document(self, document: dict, pages: list) -> None:
        self.document, self.pages = document, pages


def _assemble(*pages: tuple[dict, dict[str, float]]) -> _Writer:
    """One document from (record, field confidence) per page, in page order."""
    from pipeline.merge.assemble import DocumentAssembler
    from pipeline.results import PageResult
    from pipeline.schema.compiled import load_schema
    from pipeline.schema.scope import open_disputes

    writer = _Writer()
    schema = load_schema(INVOICE_SCHEMA)
    assembler = DocumentAssembler(schema, {}, writer)  # type: ignore[arg-type]
    for number, (record, confidence) in reversed(list(enumerate(pages, start=1))):  # any arrival order
        # the fields that matter on the page are decided once, in the worker, as here
        open_fields = open_disputes(confidence, schema.raw, number, len(pages))
        assembler.add(PageResult("inv.pdf", "0" * 64, number, len(pages), status="ok", record=record,
                                 latency_ms=1.0, field_confidence=confidence, open_fields=open_fields))
    return writer


def test_totals_disputed_on_an_earlier_page_matter_only_if_the_document_takes_them() -> None:
    party = {"name": "S", "vat_id": None, "address": None}
    page1 = _page(invoice_number="INV-1", seller=party, buyer=party, line_items=[_item("a")], total_amount=5.0)
    page2 = _page(seller=party, buyer=party, net_amount=2.0, tax_amount=0.0, total_amount=2.0,
                  line_items=[])
    unsure_total = {"total_amount": 2 / 3, "invoice_number": 1.0}
    writer = _assemble((page1, unsure_total), (page2, {"total_amount": 1.0}))
    first = writer.pages[0]
    assert first["disputed_fields"] == ["total_amount"] and not first["needs_review"]
    assert writer.document["total_amount"] == 2.0 and not writer.document["needs_review"]
    # page 2 prints no totals: the document takes page 1's disputed one, and says so
    writer = _assemble((page1, unsure_total), (_page(seller=party, buyer=party, line_items=[]), {}))
    assert writer.document["total_amount"] == 5.0 and writer.document["needs_review"]
    # any other field disputed on page 1 is still the page's to review
    writer = _assemble((page1, {"invoice_number": 2 / 3}), (page2, {}))
    assert writer.pages[0]["needs_review"] and writer.document["needs_review"]


def test_open_disputes_leave_totals_to_the_last_page_and_the_header_to_the_first() -> None:
    from pipeline.schema.scope import merge_mode, open_disputes

    assert [merge_mode(p, SCHEMA) for p in ("total_amount", "buyer.name", "invoice_number", "line_items.length",
                                            "line_items[0].amount", "no_such_field")] == \
        ["last", "first", "first", "rows", "rows", "rows"]
    confidence = {"total_amount": 0.5, "line_items[0].amount": 0.5, "invoice_number": 1.0, "net_amount": 0.9,
                  "buyer.name": 0.5}
    assert open_disputes(confidence, SCHEMA, 1, 3) == ["buyer.name", "line_items[0].amount"]
    assert open_disputes(confidence, SCHEMA, 2, 3) == ["line_items[0].amount"]
    assert open_disputes(confidence, SCHEMA, 3, 3) == ["line_items[0].amount", "net_amount", "total_amount"]
    assert open_disputes(confidence, SCHEMA, 1, 1) == ["buyer.name", "line_items[0].amount", "net_amount",
                                                      "total_amount"]


def test_a_header_disputed_on_a_later_page_matters_only_if_the_document_takes_it() -> None:
    party = {"name": "S", "vat_id": None, "address": None}
    page1 = _page(invoice_number="INV-1", seller=party, buyer=party, line_items=[_item("a")])
    page2 = _page(invoice_number="INV-1", seller={**party, "vat_id": "DE123456789"}, buyer=party, total_amount=2.0,
                  line_items=[])
    unsure = {"buyer.name": 2 / 3, "seller.vat_id": 2 / 3, "total_amount": 1.0}
    writer = _assemble((page1, {}), (page2, unsure))
    assert writer.pages[1]["disputed_fields"] == ["buyer.name", "seller.vat_id"]
    assert not writer.pages[1]["needs_review"]  # neither sends nor flags the page
    assert writer.document["seller"]["vat_id"] == "DE123456789" and writer.document["needs_review"]  # page 1 has none
    writer = _assemble((page1, {}), (page2, {"buyer.name": 2 / 3}))
    assert writer.document["buyer"]["name"] == "S" and not writer.document["needs_review"]  # page 1's is used


def test_totals_read_as_rows_on_the_last_page_are_dropped_from_the_document() -> None:
    """Page by page the rows cannot add up; the merged document proves which rows restate totals."""
    party = {"name": None, "vat_id": None, "address": None}
    page1 = _page(invoice_number="INV-1", seller=party, buyer=party, line_items=[_item("a"), _item("b")])
    page2 = _page(seller=party, buyer=party, net_amount=6.0, tax_amount=1.2, total_amount=7.2,
                  line_items=[_item("c"), _item("Subtotal", 6.0, 6.0, 6.0), _item("VAT", None, None, 1.2),
                              _item("Total", None, None, 7.2)])
    writer = _assemble((page1, {}), (page2, {}))
    assert writer.document["error"] is None, writer.document["error"]
    assert [i["description"] for i in writer.document["line_items"]] == ["a", "b", "c"]
    assert writer.document["rule_failures"] == [] and writer.document["status"] == "ok"
