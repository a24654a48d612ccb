"""Grounding: every value looked up on its page (``field_sources``), a value printed nowhere disputed."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.ground.index import PageIndex, split_words
from pipeline.ground.sources import ground_record, locate, ungrounded
from pipeline.merge.sources import document_sources
from pipeline.model.base import PageInput
from pipeline.render.pages import page_words
from pipeline.run.page import PageSteps, process_page
from pipeline.schema.compiled import load_schema
from pipeline.screen.read import LazyOcr

from .conftest import INVOICE_SCHEMA
from .test_backend import ScriptedBackend

SCHEMA = load_schema(INVOICE_SCHEMA)
WORDS = [  # x0, y0, x1, y1, text: a small page, two columns
    (40, 40, 120, 52, "ACME"), (124, 40, 160, 52, "GmbH,"), (300, 40, 360, 52, "Rechnung"),
    (40, 56, 80, 68, "Road"), (84, 56, 90, 68, "1"), (300, 56, 340, 68, "Nr."), (344, 56, 400, 68, "RE-2026/17"),
    (40, 72, 70, 84, "12345"), (74, 72, 120, 84, "Berlin"), (300, 72, 340, 84, "Datum:"),
    (344, 72, 356, 84, "7."), (360, 72, 384, 84, "März"), (388, 72, 420, 84, "2026"),
    (300, 200, 340, 212, "Summe"), (344, 200, 380, 212, "1.234,56"), (384, 200, 400, 212, "€"),
]


def test_values_are_found_where_they_are_printed() -> None:
    index = PageIndex.build(WORDS)
    total = locate(1234.56, "number", index, 1)
    assert total["match"] == "normalised" and total["text"] == "1.234,56" and total["bbox"] == [344, 200, 380, 212]
    assert locate(-1234.56, "number", index, 1)["match"] == "normalised"  # a credit note's sign is not printed
    assert locate("2026-03-07", "date", index, 1)["text"] == "7. März 2026"
    assert locate("RE-2026/17", "text", index, 1)["match"] == "exact"
    assert locate("ACME GmbH", "text", index, 1)["match"] == "exact"  # the comma after GmbH is punctuation
    assert locate("Road 1, 12345 Berlin", "text", index, 1)["match"] in ("normalised", "fuzzy")
    assert locate("RE-2026-17", "text", index, 1)["match"] == "normalised"
    assert locate("INV123456789", "text", index, 1) == {"page": 1, "bbox": None, "text": None, "match": "none"}
    assert locate(60.0, "number", index, 1)["match"] == "none"
    # a rate is no amount: OCR's "GS106%" (GST 06%) grounds no total of 106; the total beside it is found
    rate = PageIndex.build([(40, 40, 90, 52, "TOTAL"), (94, 40, 140, 52, "GS106%"), (144, 40, 160, 52, "RM"),
                            (164, 40, 200, 52, "96.90")])
    assert locate(106.0, "number", rate, 1)["match"] == "none" and locate(96.9, "number", rate, 1)["text"] == "96.90"
    assert PageIndex.build([(40, 40, 80, 52, "GST"), (84, 40, 100, 52, "6%")]).rates == {6.0}


def test_record_grounding_follows_the_schema() -> None:
    record = {"invoice_number": "RE-2026/17", "issue_date": "2026-03-07", "currency": "EUR",
              "seller": {"name": "ACME GmbH", "vat_id": "DE999999999", "address": None},
              "total_amount": 1234.56, "net_amount": 1000.0, "line_items": [{"description": "Road", "amount": 1.0}]}
    sources = ground_record(record, SCHEMA.raw, PageIndex.build(WORDS), 2)
    assert "currency" not in sources  # an enum is chosen from a list, not copied from the page
    assert "seller.address" not in sources  # null: nothing to look up
    assert sources["line_items[0].description"]["match"] == "exact" and sources["total_amount"]["page"] == 2
    assert ungrounded(sources) == ["net_amount", "seller.vat_id"]
    assert ground_record(record, SCHEMA.raw, PageIndex.build([]), 1) == {}  # no words: nothing to say


def test_ocr_lines_are_split_into_words() -> None:
    words = split_words([(0, 0, 120, 10, "Total: 12.00 EUR")])
    assert [w[4] for w in words] == ["Total:", "12.00", "EUR"]
    assert words[1][0] == 7 * 120 / 16 and words[1][2] == 12 * 120 / 16


def test_a_pdf_page_grounds_its_own_truth(sample_dir: Path) -> None:
    pdf = sample_dir / "invoice-001-classic.pdf"
    truth = json.loads(pdf.with_suffix(".json").read_text())
    sources = ground_record(truth, SCHEMA.raw, PageIndex.build(page_words(pdf, 1)), 1)
    assert len(sources) >= 10 and ungrounded(sources) == []
    for source in sources.values():
        x0, y0, x1, y1 = source["bbox"] or [0, 0, 0, 0]
        assert 0 <= x0 < x1 <= 612 and 0 <= y0 < y1 <= 842  # points on an A4 / letter page


def test_invoices_of_fourteen_locales_ground_their_own_truth(tmp_path: Path) -> None:
    """Dates and amounts as CLDR writes them in Dutch, Polish, Danish, Hungarian, US English...: the
    page's own truth is found printed (a value the index cannot read would be a doubt on every page)."""
    from click.testing import CliRunner

    from pipeline.cli import main
    from pipeline.devtools.world import WORLD

    result = CliRunner().invoke(main, ["samples", "world", str(tmp_path), "--per-locale", "1"])
    assert result.exit_code == 0 and f"wrote {len(WORLD)} documents in {len(WORLD)} locales" in result.output
    pdfs = sorted(tmp_path.glob("world-*.pdf"))
    assert len(pdfs) == len(WORLD)
    for pdf in pdfs:
        truth = json.loads(pdf.with_suffix(".json").read_text())
        sources = ground_record(truth, SCHEMA.raw, PageIndex.build(page_words(pdf, 1)), 1)
        assert ungrounded(sources) == [], (pdf.name, ungrounded(sources))


def test_an_invented_value_is_disputed_and_flags_the_page(sample_dir: Path) -> None:
    pdf = sample_dir / "invoice-001-classic.pdf"
    truth = json.loads(pdf.with_suffix(".json").read_text())
    invented = {**truth, "invoice_number": "INV123456789", "total_amount": 60.0}
    backend = ScriptedBackend([json.dumps(invented)], schema=SCHEMA)
    task = {"source_path": str(pdf), "source_sha256": "a" * 64, "page_number": 1, "page_count": 1}
    result = process_page(backend, task, PageSteps(SCHEMA.raw, 72, 100_000, LazyOcr(), None, [], False, 1.0))
    assert result.status == "ok"
    assert result.ungrounded_fields == ["total_amount"]
    assert result.field_sources["total_amount"]["match"] == "none"
    assert "total_amount" in result.open_fields and result.needs_review
    # the invented number is not kept either: the page prints the number after its label (rules.labels)
    assert result.record is not None and result.record["invoice_number"] == truth["invoice_number"]
    assert any(r.startswith("invoice_number: 'INV123456789' -> ") for r in result.repairs)


def test_document_sources_follow_the_merge() -> None:
    def src(page: int, text: str) -> dict:
        return {"page": page, "bbox": [0, 0, 1, 1], "text": text, "match": "exact"}

    pages = [
        {"_record": {"invoice_number": "A1", "total_amount": 5.0, "line_items": [{"amount": 1.0}, {"amount": 2.0}]},
         "field_sources": {"invoice_number": src(1, "A1"), "total_amount": src(1, "5.00"),
                           "line_items[0].amount": src(1, "1.00"), "line_items[1].amount": src(1, "2.00")}},
        {"_record": {"invoice_number": "A1", "total_amount": 3.0, "line_items": [{"amount": 2.0}, {"amount": 3.0}]},
         "field_sources": {"invoice_number": src(2, "A1"), "total_amount": src(2, "3.00"),
                           "line_items[0].amount": src(2, "2.00"), "line_items[1].amount": src(2, "3.00")}},
    ]
    merged = {"invoice_number": "A1", "total_amount": 3.0, "line_items": [{"amount": 1.0}, {"amount": 2.0},
                                                                          {"amount": 3.0}]}  # row 2 carried over
    sources = document_sources(pages, merged, SCHEMA.raw)
    assert sources["invoice_number"]["page"] == 1 and sources["total_amount"]["page"] == 2  # first / last
    assert [sources[f"line_items[{i}].amount"]["page"] for i in range(3)] == [1, 1, 2]
    assert sources["line_items[2].amount"]["text"] == "3.00"


def test_page_input_carries_the_words(sample_dir: Path) -> None:
    words = page_words(sample_dir / "invoice-001-classic.pdf", 1)
    page = PageInput("x.pdf", 1, b"", "text", (tuple(words),))
    assert page.words[0] and all(len(w) == 5 for w in page.words[0])


def test_pages_with_text_are_grouped_into_one_request(sample_dir: Path, tmp_path: Path) -> None:
    from pipeline.render.pages import page_count, page_groups
    from pipeline.results import PageResult

    multi = sample_dir / "multipage-001.pdf"
    count = page_count(multi)
    assert count >= 2
    assert page_groups(multi, 1) == [(n, 1) for n in range(1, count + 1)]
    groups = page_groups(multi, 2)
    assert groups[0] == (1, 2) and sum(span for _, span in groups) == count  # every page once, in order
    assert page_groups(sample_dir / "scanned-001.pdf", 4) == [(1, 1)]  # no text layer: read alone (OCR)
    assert page_groups(sample_dir / "photo-001.png", 4) == [(1, 1)]
    first = PageResult.for_task({"source_path": "a.pdf", "source_sha256": "0" * 64, "page_number": 1,
                                 "page_count": 3}, status="ok", record={"invoice_number": "A"}, text_source="layer")
    others = first.companions(3)
    assert [(p.page_number, p.status, p.record, p.read_with) for p in others] == [(2, "ok", None, 1),
                                                                                  (3, "ok", None, 1)]


def test_a_group_that_reads_the_last_page_owns_the_totals() -> None:
    from pipeline.schema.scope import open_disputes

    confidence = {"total_amount": 0.5, "invoice_number": 1.0}
    assert open_disputes(confidence, SCHEMA.raw, 1, 2) == []  # page 1 of 2: the last page has the totals
    assert open_disputes(confidence, SCHEMA.raw, 1, 2, pages_read=2) == ["total_amount"]


def test_a_word_misspelt_by_a_letter_is_found_but_a_short_or_numeric_one_is_not() -> None:
    index = PageIndex.build(WORDS + [(40, 100, 140, 112, "Lieferant"), (144, 100, 180, 112, "GmbH")])
    assert locate("Lieferanten GmbH", "text", index, 1)["match"] == "fuzzy"  # the model's extra "en"
    assert locate("Acne GmbX", "text", index, 1)["match"] == "none"  # short words must be exact
    assert locate("12346 Berlin", "text", index, 1)["match"] == "none"  # so must numbers


def test_a_date_printed_nowhere_is_dropped_with_a_note_and_flags_nothing() -> None:
    from pipeline.rules.settle import settle_page

    record = {"invoice_number": "RE-2026/17", "issue_date": "2026-03-07", "due_date": "2026-03-31", "currency": "EUR"}
    settled = settle_page(record, dict.fromkeys(record, 1.0), SCHEMA.raw, [], [WORDS], 1, 1)
    assert settled.record["due_date"] is None and settled.record["issue_date"] == "2026-03-07"
    assert settled.repairs == ["due_date: printed nowhere on the page, dropped"]
    assert settled.ungrounded_fields == [] and settled.open_fields == []


def test_a_sample_that_writes_a_value_printed_nowhere_is_no_vote_against_a_printed_one() -> None:
    from pipeline.ground.votes import printed_agreement

    index = PageIndex.build(WORDS)
    samples = [{"invoice_number": "RE-2026/17", "buyer": {"vat_id": None}},
               {"invoice_number": "INV-99", "buyer": {"vat_id": "DE123456789"}},
               {"invoice_number": "Rechnung", "buyer": {"vat_id": "FR761938861"}}]
    record = {"invoice_number": "RE-2026/17", "buyer": {"vat_id": None}}
    confidence = {"invoice_number": 1 / 3, "buyer.vat_id": 1 / 3}
    settled = printed_agreement(confidence, record, samples, SCHEMA.raw, [index])
    # "Rechnung" is printed: a real reading against the record's; "INV-99" is not, and does not count
    assert settled["invoice_number"] == 0.5
    assert settled["buyer.vat_id"] == 1.0  # none of the three VAT ids is printed: nothing is in dispute
    assert printed_agreement(confidence, record, samples, SCHEMA.raw, [PageIndex.build([])]) == confidence


def test_dates_as_ocr_glues_them_and_in_the_pages_own_order() -> None:
    def page(*texts: str) -> PageIndex:
        return PageIndex.build([(0, 20 * i, 60, 20 * i + 10, t) for i, t in enumerate(texts)])

    assert {"2016-01-31"} <= {d for found, _ in page("Date", ":31 Jan 2016").dates for d in found}
    assert {"2016-02-02"} <= {d for found, _ in page(":02/02/1610:23:36AM").dates for d in found}
    # "09.07.2018" is 9 July where the page's unambiguous dates are day-first, 7 September where not
    assert page("13.07.2018", "09.07.2018").printed_dates == {"2018-07-13", "2018-07-09"}
    assert page("07/13/2018", "09/07/2018").printed_dates == {"2018-07-13", "2018-09-07"}
    assert {"2018-07-09", "2018-09-07"} <= {d for found, _ in page("09.07.2018").dates for d in found}


def test_counting_among_printed_readings_never_starts_a_dispute() -> None:
    from pipeline.ground.votes import printed_agreement

    index = PageIndex.build(WORDS)
    # the rules emptied a value two samples read as printed ("1.234,56"): its agreement stays
    samples = [{"charge_total": 1234.56}, {"charge_total": 1234.56}, {"charge_total": None}]
    settled = printed_agreement({"charge_total": 2 / 3}, {"charge_total": None}, samples, SCHEMA.raw, [index])
    assert settled == {"charge_total": 2 / 3}
    # the record's value came from the page's label and no sample's is printed: nothing to re-count
    # (it divided by zero, and the page failed)
    samples = [{"invoice_number": "INV-98"}, {"invoice_number": "INV-99"}]
    settled = printed_agreement({"invoice_number": 0.5}, {"invoice_number": "RE-2026/17"}, samples, SCHEMA.raw, [index])
    assert settled == {"invoice_number": 0.5}


def test_adaptive_sampling_votes_only_a_page_the_greedy_answer_leaves_in_doubt(sample_dir: Path) -> None:
    from pipeline.results import GREEDY_SETTLED

    pdf = sample_dir / "invoice-001-classic.pdf"
    truth = json.loads(pdf.with_suffix(".json").read_text())
    task = {"source_path": str(pdf), "source_sha256": "a" * 64, "page_number": 1, "page_count": 1}
    steps = PageSteps(SCHEMA.raw, 72, 100_000, LazyOcr(), None, [], False, 1.0, adaptive=True)

    printed = ScriptedBackend([json.dumps(truth)] * 3, schema=SCHEMA)
    printed.samples = 3
    result = process_page(printed, task, steps)
    assert printed.calls == [0] and result.samples == 1 and result.sample_reason == GREEDY_SETTLED
    assert result.open_fields == [] and not result.needs_review
    assert result.read_ms > 0 and result.settle_ms > 0  # where the seconds went

    invented = {**truth, "buyer": {**truth["buyer"], "name": "Invented Trading Ltd"}}
    doubtful = ScriptedBackend([json.dumps(invented), json.dumps(truth), json.dumps(truth)], schema=SCHEMA)
    doubtful.samples = 3
    result = process_page(doubtful, task, steps)
    assert doubtful.calls == [0, 1, 2] and result.samples == 3
    assert (result.sample_reason or "").startswith("in doubt: buyer.name")
    assert result.record is not None and result.record["buyer"]["name"] == truth["buyer"]["name"]  # the vote


def test_a_code_is_not_found_in_pieces_of_other_words() -> None:
    """'INV-1' is not printed because 'INV-2025-3213' and '1,449.54' are: a token of one or two
    characters proves nothing, so such a value is printed nowhere (and so in doubt)."""
    index = PageIndex.build(WORDS + [(40, 100, 140, 112, "INV-2025-3213"), (144, 100, 180, 112, "1,449.54")])
    assert locate("INV-1", "text", index, 1)["match"] == "none"
    assert locate("INV-2025-3213", "text", index, 1)["match"] == "exact"
