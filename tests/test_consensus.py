"""Field-by-field consensus of K samples."""

from __future__ import annotations

from pipeline.consensus.vote import consensus, vote


def _rec(total: float | None, number: str, items: list[tuple[str, float]]) -> dict:
    return {"invoice_number": number, "total_amount": total, "seller": {"name": "ACME", "vat_id": None},
            "line_items": [{"description": d, "amount": a} for d, a in items]}


def test_unanimous_samples_have_full_confidence() -> None:
    sample = _rec(11.9, "INV-1", [("a", 4.0), ("b", 6.0)])
    result = consensus([sample, dict(sample), dict(sample)])
    assert result.record == sample
    assert result.disputed == [] and result.min_confidence == 1.0 and result.mean_confidence == 1.0


def test_majority_wins_and_the_field_is_disputed() -> None:
    result = consensus([_rec(11.9, "INV-1", []), _rec(11.9, "INV-7", []), _rec(12.0, "INV-1", [])])
    assert result.record["invoice_number"] == "INV-1" and result.record["total_amount"] == 11.9
    assert result.confidence["invoice_number"] == 2 / 3 and result.confidence["total_amount"] == 2 / 3
    assert result.confidence["seller.name"] == 1.0
    assert result.disputed == ["invoice_number", "total_amount"]
    assert result.min_confidence == 2 / 3


def test_values_are_compared_after_normalisation_and_ties_go_to_greedy() -> None:
    assert vote([11.9, 11.899, 12.5], {"type": "number"})[1] == 2 / 3  # within 0.01
    assert vote(["ACME GmbH", "acme gmbh."], {"type": "string"}) == ("ACME GmbH", 1.0)
    assert vote(["first", "second"], {"type": "string"}) == ("first", 0.5)
    assert vote(["3 March 2026", "2026-03-03"], {"type": "string", "format": "date"})[1] == 1.0


def test_agreement_comes_from_the_schema_not_the_field_name() -> None:
    """Three identical samples of a field whose name merely contains 'date' agree (it is text)."""
    schema = {"type": "object", "properties": {
        "mandate_reference": {"type": ["string", "null"]},
        "candidate": {"type": ["string", "null"]},
        "validated_by": {"type": ["string", "null"]},
        "due": {"type": ["string", "null"], "format": "date"},
    }}
    sample = {"mandate_reference": "MR-2024-77", "candidate": "A. Smith", "validated_by": "QA",
              "due": "2026-04-01"}
    result = consensus([sample, dict(sample), dict(sample)], schema)
    assert result.confidence == {"mandate_reference": 1.0, "candidate": 1.0, "validated_by": 1.0, "due": 1.0}
    assert result.disputed == []
    # a date field is compared as a date, whatever its name
    other = {**sample, "due": "1 April 2026"}
    assert consensus([sample, other], schema).confidence["due"] == 1.0
    assert consensus([sample, {**sample, "due": "2026-04-02"}], schema).confidence["due"] == 0.5


def test_line_items_are_aligned_before_voting() -> None:
    greedy = _rec(10.0, "I", [("a", 4.0), ("b", 6.0)])
    shuffled = _rec(10.0, "I", [("b", 6.0), ("a", 4.0)])
    missing_row = _rec(10.0, "I", [("a", 4.0)])
    result = consensus([greedy, shuffled, missing_row])
    assert [r["description"] for r in result.record["line_items"]] == ["a", "b"]
    assert result.confidence["line_items[0].amount"] == 1.0
    assert result.confidence["line_items[1].amount"] == 2 / 3
    assert result.confidence["line_items.length"] == 2 / 3
    assert "line_items.length" in result.disputed


def test_samples_that_write_one_address_two_ways_agree_but_a_reviewer_edit_is_not_lost() -> None:
    from pipeline.consensus.compare import agrees, same

    node = {"type": ["string", "null"]}
    with_country = "Lieferantenstraße 20, 10369 Berlin, Deutschland"
    assert vote([with_country, "Lieferantenstraße 20 10369 Berlin", "Lieferantenstraße 20, 10369 Berlin"],
                node) == (with_country, 1.0)
    assert not same(with_country, "Lieferantenstraße 20, 10369 Berlin", node)  # a reviewer's edit stays an edit
    # one read further along the same words: a row's second line, a name's legal form
    assert agrees("Fahrtkosten, Taxi Berlin", "Fahrtkosten", node)
    assert agrees("Kfz- Haftpflicht SF25 (30 %)", "Kfz-Haftpflicht", node)
    assert agrees("Au bon moulin SARL", "Au bon moulin", node)
    assert not agrees("Au moulin", "Au bon moulin", node)  # short text otherwise: every word counts
    assert not agrees("Lieferant GmbH", "GmbH", node)  # the end of a text is no reading of it
    assert not agrees("Kundenstraße 15, 69876 Frankfurt", "Lieferantenstraße 20, 80333 München", node)
    assert not agrees("2026-03-01", "2026-03-02", {"type": "string", "format": "date"})
