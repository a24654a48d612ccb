"""A value missing, unreadable, in two orders, or of a shared sign is a doubt with its reason, not a silent guess."""

from __future__ import annotations

import json
from typing import Any

from pipeline.ground.index import PageIndex
from pipeline.results import PageResult
from pipeline.rules.checks import check_rules
from pipeline.rules.evidence import countries
from pipeline.rules.expected import kind_fields
from pipeline.rules.settle import settle_page
from pipeline.screen.kinds import extracted
from tests.conftest import INVOICE_SCHEMA

SCHEMA = json.loads(INVOICE_SCHEMA.read_text())
RULES = check_rules(SCHEMA)


def _words(*lines: tuple[float, float, str]) -> list[tuple[float, float, float, float, str]]:
    words = []
    for x, y, text in lines:
        for token in text.split():
            words.append((x, y, x + 6 * len(token), y + 10, token))
            x += 6 * len(token) + 6
    return words


def _record(**values: Any) -> dict[str, Any]:
    party = {"name": None, "vat_id": None, "address": None}
    base = {name: None for name in SCHEMA["properties"]}
    return {**base, "seller": dict(party), "buyer": dict(party), "line_items": [], **values}


PAGE = _words((40, 40, "ACME Tools GmbH"), (40, 60, "Invoice R-17"), (40, 80, "Date: 03/04/2026"),
              (40, 100, "Total EUR 119.00"), (40, 700, "USt-IdNr. DE136695976"))


def _settle(record: dict[str, Any], words: list[Any] = PAGE, **kw: Any) -> Any:
    confidence = {"invoice_number": 1.0}
    return settle_page(record, confidence, SCHEMA, RULES, [words], 1, 1, **kw)


def test_a_value_every_invoice_has_that_is_missing_is_a_doubt() -> None:
    seller = {"name": "ACME Tools GmbH", "vat_id": "DE136695976", "address": None}  # the VAT id the page prints
    settled = _settle(_record(invoice_number="R-17", issue_date="2026-04-03", currency="EUR", total_amount=119.0,
                              seller=seller), kind="invoice")
    assert settled.doubts == []
    missing = _settle(_record(invoice_number="R-17", currency="EUR", total_amount=119.0, seller=seller), kind="invoice")
    assert "issue_date" in missing.open_fields
    assert missing.doubts == ["issue_date: every invoice has one, and none was read"]


def test_a_value_normalising_threw_away_is_a_doubt() -> None:
    record = _record(invoice_number="R-17", issue_date="2026-04-03", currency="EUR",
                     seller={"name": "ACME Tools GmbH", "vat_id": "DE136695976", "address": None})
    settled = _settle(record, kind="invoice", unreadable=["total_amount"])
    assert "total_amount" in settled.open_fields
    assert any(d.startswith("total_amount: ") for d in settled.doubts)
    # a text that does not fit its pattern (a VAT id written as "none") was not there to misread: no doubt
    assert "seller.vat_id" not in _settle(record, kind="invoice", unreadable=["seller.vat_id"]).open_fields


def test_a_receipt_is_not_flagged_for_fields_a_receipt_does_not_have() -> None:
    assert kind_fields(["buyer.name", "due_date", "seller.vat_id", "seller.name", "currency", "total_amount"], SCHEMA,
                       "receipt") == ["seller.name", "currency", "total_amount"]
    assert kind_fields(["buyer.name"], SCHEMA, "invoice") == ["buyer.name"]


def test_the_order_of_a_numeric_date_comes_from_evidence_or_is_a_doubt() -> None:
    seller = {"name": "ACME Tools GmbH", "vat_id": "DE136695976", "address": None}
    base = {"invoice_number": "R-17", "currency": "EUR", "total_amount": 119.0, "seller": seller}
    # a German VAT id that validates (python-stdnum): Germans write the day first (CLDR)
    settled = _settle(_record(issue_date="2026-03-04", **base), kind="invoice")
    assert settled.record["issue_date"] == "2026-04-03"
    assert any("day first" in r and "DE" in r for r in settled.repairs)
    # no identifier, no date only one order reads: in doubt, not read day first silently
    anonymous = [w for w in PAGE if "DE136695976" not in w[4]]
    unsure = _settle(_record(issue_date="2026-04-03", **base), anonymous, kind="invoice")
    assert "issue_date" in unsure.open_fields and "reads day first or month first" in " ".join(unsure.doubts)
    # no locale writes a month-first date with dots (CLDR): "03.04.2026" is 3 April without any evidence
    dotted = [(*w[:4], "03.04.2026") if w[4] == "03/04/2026" else w for w in anonymous]
    settled = _settle(_record(issue_date="2026-03-04", **base), dotted, kind="invoice")
    assert settled.record["issue_date"] == "2026-04-03" and "issue_date" not in settled.open_fields
    # a date in doubt that the order rule then drops (due before issued either way) stays in doubt
    dropped = _words((40, 40, "ACME Tools GmbH"), (40, 60, "Invoice date: 10 April 2026"), (40, 80, "Due: 03/04/2026"))
    settled = _settle(_record(issue_date="2026-04-10", due_date="2026-03-04", **base), dropped, kind="invoice")
    assert settled.record["due_date"] is None and "due_date" in settled.open_fields
    # the page's own date that only one order reads settles it: 04/18/2026 is month first
    us = [*anonymous, *_words((40, 120, "Due: 04/18/2026"))]
    settled = _settle(_record(issue_date="2026-04-03", **base), us, kind="invoice")
    assert settled.record["issue_date"] == "2026-03-04" and "issue_date" not in settled.open_fields


def test_a_month_named_differently_in_two_languages_is_read_in_the_pages_language_or_doubted() -> None:
    """"listopada" is October in Croatian and November in Polish (CLDR): the date parser read a
    Croatian invoice's date as Polish, right-looking and unflagged."""
    base = {"invoice_number": "R-17", "currency": "EUR", "total_amount": 119.0,
            "seller": {"name": "ACME d.o.o.", "vat_id": None, "address": None}}

    def page(*address: str, printed: str = "15. listopada 2025") -> list[Any]:
        return _words((40, 40, "ACME d.o.o."), *((40, 52, line) for line in address), (40, 80, f"Datum {printed}"),
                      (40, 100, "Ukupno EUR 119.00"))

    settled = _settle(_record(issue_date="2025-11-15", **base), page("10000 Zagreb, Croatia"), kind="invoice")
    assert settled.record["issue_date"] == "2025-10-15" and "issue_date" not in settled.open_fields
    assert any("read in hr" in r for r in settled.repairs)
    settled = _settle(_record(issue_date="2025-11-15", **base), page("00-001 Warszawa, Poland"), kind="invoice")
    assert settled.record["issue_date"] == "2025-11-15" and "issue_date" not in settled.open_fields
    # no country: the page's words say which language (py3langid among Croatian and Polish)
    words = page("Račun broj 17, mjesto izdavanja Zagreb", "Ukupno za platiti, PDV uključen")
    settled = _settle(_record(issue_date="2025-11-15", **base), words, kind="invoice")
    assert settled.record["issue_date"] == "2025-10-15" and "issue_date" not in settled.open_fields
    # "Jan" is June in Sesotho: an English page is read in English, not doubted
    english = _words((40, 40, "ACME Ltd"), (40, 60, "Invoice date: Jan 15, 2026"), (40, 80, "Amount due"))
    assert "issue_date" not in _settle(_record(issue_date="2026-01-15", **base), english, kind="invoice").open_fields
    # a date taken from its label is read the same way (the label reads it as the date parser does)
    labelled = _words((40, 40, "ACME d.o.o."), (40, 52, "10000 Zagreb, Croatia"),
                      (40, 80, "Datum računa: 3. rujna 2025. | Datum dospijeća: 17. listopada 2025."))
    settled = _settle(_record(issue_date="2025-09-03", due_date="2025-09-17", **base), labelled, kind="invoice")
    assert settled.record["due_date"] == "2025-10-17"
    # nothing says which: in doubt, with both readings
    bare = _words((40, 40, "ACME"), (40, 80, "15. listopada 2025"), (40, 100, "EUR 119.00"))
    unsure = _settle(_record(issue_date="2025-11-15", **base), bare, kind="invoice")
    assert "issue_date" in unsure.open_fields and "2025-10-15 in hr; 2025-11-15 in pl" in " ".join(unsure.doubts)
    # a month every language reads as one is no doubt, nor is a date also printed in numbers
    plain = page(printed="15. studenoga 2025")  # Croatian November: no other language's month
    assert "issue_date" not in _settle(_record(issue_date="2025-11-15", **base), plain, kind="invoice").open_fields
    both = [*page(), *_words((40, 120, "15.11.2025"))]
    assert "issue_date" not in _settle(_record(issue_date="2025-11-15", **base), both, kind="invoice").open_fields


def test_an_allowance_drawn_as_another_fields_amount_is_no_dispute() -> None:
    """The model writes an allowance that restates a total (dropped); its other draws wrote a row's
    amount and the tax: no reading of an allowance, and the right record was flagged for them."""
    from pipeline.rules.checks import restated_adjustments

    record = _record(net_amount=100.0, tax_amount=19.0, total_amount=119.0,
                     line_items=[{"description": "Widget", "quantity": 1.0, "unit_price": 100.0, "amount": 100.0}])
    samples = [record, {**record, "allowance_total": 19.0}, {**record, "allowance_total": 100.0}]
    confidence = {"allowance_total": 1 / 3, "invoice_number": 1.0}
    assert restated_adjustments(confidence, record, samples, RULES)["allowance_total"] == 1.0
    # a draw of an amount the record holds nowhere else is a reading: the dispute stands
    other = [record, {**record, "allowance_total": 5.0}, {**record, "allowance_total": 19.0}]
    assert restated_adjustments(confidence, record, other, RULES)["allowance_total"] == 1 / 3
    # nor is anything said where the record holds an allowance
    held = {**record, "allowance_total": 19.0}
    assert restated_adjustments(confidence, held, samples, RULES) == confidence



def test_a_dispute_over_a_row_the_record_no_longer_has_is_over_nothing() -> None:
    """The samples disagreed over a third row's quantity; the rules dropped that row (a total
    restated as a row): the record was flagged for a row it does not have."""
    from pipeline.rules.checks import on_held_rows

    record = _record(line_items=[{"description": "Widget", "quantity": 1.0, "unit_price": 5.0, "amount": 5.0}])
    confidence = {"line_items[0].quantity": 1 / 3, "line_items[2].quantity": 1 / 3, "line_items.length": 1.0,
                  "allowance_total": 1 / 3}
    assert on_held_rows(confidence, record) == {"line_items[0].quantity": 1 / 3, "line_items.length": 1.0,
                                                "allowance_total": 1 / 3}


def test_countries_come_from_identifiers_that_validate() -> None:
    page = PageIndex.build(_words((40, 40, "DE136695976"), (40, 60, "IBAN DK50 0040 0440 1162 43"),
                                  (40, 80, "DE123456789 Georgia")))  # a VAT id with a wrong check digit
    assert countries([page]) == {"DE", "DK"}
    # an address that ends in a country (CLDR's names) or a US state with its ZIP (pycountry); not "Georgia"
    for line, country in (("Scranton PA 18503", {"US"}), ("Bangalore, Karnataka, India - 560067", {"IN"}),
                          ("10115 Berlin, Deutschland", {"DE"}), ("Atlanta, Georgia", set()),
                          # a three-letter state only one country has, after its town, before the postcode;
                          # not a currency's code ("RON" is a state of the UK too)
                          ("Sydney NSW 2000", {"AU"}), ("Guzmanside, QLD, 2659", {"AU"}), ("Total RON 12345", set()),
                          ("Perth WA 6000", set())):
        assert countries([PageIndex.build(_words((40, 40, line)))]) == country, line
    # a town only one country has, after its postcode (GeoNames): not one several countries have, not
    # a town named without a postcode, not a word that is no town
    for line, country in (("CHERAS, 55100 KUALA LUMPUR", {"MY"}), ("53200,KUALA LUMPUR.", {"MY"}),
                          ("40150 SHAH ALAM, SELANGOR DARUL EHSAN.", {"MY"}), ("DE 12345 Berlin", {"DE"}),
                          ("75008 Paris", set()), ("Kuala Lumpur", set()), ("12345 Musterstadt", set()),
                          ("Invoice 12345 total", set())):
        assert countries([PageIndex.build(_words((40, 40, line)))]) == country, line


def test_a_page_that_prints_a_total_without_cents_is_read() -> None:
    slip = _words((40, 40, "PAYMENT SLIP"), (40, 60, "Paid by: R. Kumar"), (40, 80, "Total Rs 1939"))
    assert extracted("other", slip, ("invoice", "credit_note", "receipt"))
    assert not extracted("other", _words((40, 40, "Meeting notes"), (40, 60, "Room 12")), ("invoice",))


def test_the_reasons_say_why_a_page_needs_review() -> None:
    page = PageResult("a.pdf", "a" * 64, 1, 1, status="ok", open_fields=["currency", "issue_date"])
    assert page.needs_review and page.review_reasons == ["in doubt: currency, issue_date"]
    assert PageResult("a.pdf", "a" * 64, 1, 1, status="ok").review_reasons == []


def test_one_answer_settles_a_page_only_when_nothing_decisive_is_open_or_unsure() -> None:
    from pipeline.rules.expected import decisive
    from pipeline.rules.settle import unsettled

    assert decisive(SCHEMA, "issue_date", "invoice") and decisive(SCHEMA, "line_items[3].amount", "invoice")
    assert decisive(SCHEMA, "currency", "invoice") and decisive(SCHEMA, "seller.name", "invoice")
    assert not decisive(SCHEMA, "seller.address", "invoice") and not decisive(SCHEMA, "line_items[0].description",
                                                                              "invoice")
    record = _record(invoice_number="R-17", issue_date="2026-04-03", currency="EUR", total_amount=119.0,
                     seller={"name": "ACME Tools GmbH", "vat_id": "DE136695976", "address": None})
    settled = _settle(record, kind="invoice")
    assert settled.open_fields == [] and settled.whole

    def why(certainty: dict[str, float]) -> tuple[str, list[str]] | None:
        return unsettled(settled, RULES, SCHEMA, "invoice", certainty, 0.3)

    assert why({"issue_date": 0.9, "seller.address": 0.01}) is None  # unsure of an address's wording: no vote
    assert why({"issue_date": 0.21, "total_amount": 0.05}) == ("unsure: total_amount (0.05), issue_date (0.21)",
                                                               ["issue_date", "total_amount"])  # what to draw again
    missing = _settle({**record, "issue_date": None}, kind="invoice")
    assert unsettled(missing, RULES, SCHEMA, "invoice", {}, 0.3) == ("in doubt: issue_date", ["issue_date"])
    broken = _settle({**record, "net_amount": 100.0, "tax_amount": 50.0}, kind="invoice")
    why_broken, paths = unsettled(broken, RULES, SCHEMA, "invoice", {}, 0.3) or ("", [])
    assert "rules: " in why_broken and {"net_amount", "tax_amount", "total_amount"} <= set(paths)
