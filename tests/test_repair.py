"""Rule-driven repair: totals that do not add up are fixed from the page's own amounts, visibly."""

from __future__ import annotations

import json

import pytest

from pipeline.rules.checks import check_rules, rule_failures
from pipeline.rules.totals import repair_totals
from pipeline.schema.compiled import load_schema

from .conftest import INVOICE_SCHEMA

RULES = check_rules(load_schema(INVOICE_SCHEMA).raw)
ROWS = [{"description": "a", "quantity": 1.0, "unit_price": 399.0, "amount": 399.0},
        {"description": "b", "quantity": 2.0, "unit_price": 97.0, "amount": 194.36}]


def test_the_net_read_from_the_wrong_subtotal_is_replaced_by_the_page_amount_that_adds_up() -> None:
    record = {"net_amount": 717.97, "tax_amount": 124.61, "total_amount": 717.97, "line_items": ROWS}
    page = [717.97, 124.61, 593.36, 399.0, 2.0, 97.0, 194.36, 21.0]  # 593.36 + 124.61 = 717.97
    repaired, notes = repair_totals(record, RULES, page)
    assert repaired["net_amount"] == 593.36 and notes == ["net_amount: 717.97 -> 593.36 (net_plus_tax_is_total)"]
    assert rule_failures(RULES, repaired) == ["quantity_times_price_is_amount"]  # 2 x 97 is not 194.36: listed
    assert record["net_amount"] == 717.97  # the input is not changed in place


def test_no_repair_without_the_page_amount_or_when_two_repairs_fit() -> None:
    record = {"net_amount": 100.0, "tax_amount": 19.0, "total_amount": 100.0, "line_items": []}
    assert repair_totals(record, RULES, [100.0, 19.0, 5.0]) == (record, [])  # 81.0 / 119.0 are not printed
    # 81 (net) and 119 (total) each make it add up, and no row decides: leave it, the rules flag it
    assert repair_totals(record, RULES, [100.0, 19.0, 81.0, 119.0])[1] == []


def test_the_rows_decide_between_repairs_and_a_credit_note_keeps_its_sign() -> None:
    rows = [{"description": "a", "quantity": 1.0, "unit_price": -81.0, "amount": -81.0}]
    record = {"net_amount": -100.0, "tax_amount": -19.0, "total_amount": -100.0, "line_items": rows}
    repaired, notes = repair_totals(record, RULES, [100.0, 19.0, 81.0, 119.0])
    assert repaired["net_amount"] == -81.0 and len(notes) == 1  # 81 makes the rows add up too; sign kept


def test_trailing_rows_restating_consistent_totals_are_dropped() -> None:
    rows = [*ROWS, {"description": "Subtotal", "quantity": 1.0, "unit_price": 593.36, "amount": 593.36},
            {"description": "VAT", "quantity": 1.0, "unit_price": 112.74, "amount": 112.74},
            {"description": "Total", "quantity": None, "unit_price": None, "amount": 706.1}]
    record = {"net_amount": 593.36, "tax_amount": 112.74, "total_amount": 706.1, "line_items": rows}
    repaired, notes = repair_totals(record, RULES, [])
    assert repaired["line_items"] == ROWS and notes == ["line_items: 3 trailing rows restate the totals"]
    inconsistent = {**record, "total_amount": 700.0}  # totals that do not add up prove nothing
    assert repair_totals(inconsistent, RULES, [])[0]["line_items"] == rows


def test_a_page_is_repaired_from_its_own_words(sample_dir) -> None:  # type: ignore[no-untyped-def]
    import json

    from pipeline.run.page import PageSteps, process_page
    from pipeline.screen.read import LazyOcr

    from .test_backend import ScriptedBackend

    schema = load_schema(INVOICE_SCHEMA)
    pdf = sample_dir / "invoice-002-modern.pdf"
    truth = json.loads(pdf.with_suffix(".json").read_text())
    assert truth["tax_amount"]  # the net must differ from the total for the slip to show
    slipped = {**truth, "net_amount": truth["total_amount"]}  # the gross read as the net
    backend = ScriptedBackend([json.dumps(slipped)], schema=schema)
    task = {"source_path": str(pdf), "source_sha256": "b" * 64, "page_number": 1, "page_count": 1}
    result = process_page(backend, task, PageSteps(schema.raw, 72, 100_000, LazyOcr(), None, RULES, False, 1.0))
    assert result.record is not None and abs(result.record["net_amount"] - truth["net_amount"]) < 0.005
    assert result.repairs and result.repairs[0].startswith("net_amount: ")
    assert result.field_sources["net_amount"]["match"] in ("exact", "normalised")


def _page(*lines: tuple[float, float, str]) -> object:
    """Words from (x, y, text) lines, one word per token, 6 points per character."""
    from pipeline.ground.index import PageIndex

    words = []
    for x, y, text in lines:
        for token in text.split():
            words.append((x, y, x + 6 * len(token), y + 10, token))
            x += 6 * len(token) + 6
    return PageIndex.build(words)


def test_seller_and_buyer_are_swapped_only_on_the_page_evidence() -> None:
    from pipeline.rules.parties import repair_parties

    schema = load_schema(INVOICE_SCHEMA).raw
    model = {"seller": {"name": "Kunden AG", "vat_id": None, "address": None},
             "buyer": {"name": "Lieferant GmbH", "vat_id": None, "address": None}}
    labelled = _page((40, 100, "Rechnungsempfänger:"), (40, 114, "Kunden AG"), (300, 100, "Lieferant GmbH"),
                     (40, 700, "Danke"))
    swapped, why, _ = repair_parties(model, schema, labelled)  # type: ignore[arg-type]
    assert swapped["seller"]["name"] == "Lieferant GmbH" and swapped["buyer"]["name"] == "Kunden AG"
    assert why == "seller and buyer swapped: the seller 'Kunden AG' is marked as the buyer on the page"
    assert repair_parties(swapped, schema, labelled)[1] is None  # the right way round: kept
    footer = _page((40, 100, "Adatum Corporation"), (300, 100, "CRONUS DE"), (40, 800, "info@cronus.com"))
    wrong = {"seller": {"name": "Adatum Corporation"}, "buyer": {"name": "CRONUS DE"}}
    assert repair_parties(wrong, schema, footer)[0]["seller"] == {"name": "CRONUS DE"}  # type: ignore[arg-type]
    in_block = _page((40, 100, "Adatum Corporation"), (40, 114, "buyer@adatum.com"), (300, 100, "CRONUS DE"),
                     (40, 800, "Thank you"))
    assert repair_parties(wrong, schema, in_block)[1] is None  # an e-mail in an address block says nothing
    assert repair_parties(model, {"properties": {}}, labelled)[1] is None  # no x-party: no opinion


def test_seller_and_buyer_one_name_or_a_seller_in_the_bill_to_block_is_a_doubt() -> None:
    from pipeline.rules.parties import repair_parties

    schema = load_schema(INVOICE_SCHEMA).raw
    page = _page((40, 100, "Bill to:"), (40, 114, "Kunden AG"), (300, 100, "Danke"))
    twice = {"seller": {"name": "Kunden AG"}, "buyer": {"name": "KUNDEN AG"}}
    assert repair_parties(twice, schema, page)[2] == [  # type: ignore[arg-type]
        ("seller.name", "seller and buyer are both 'Kunden AG'")]
    # the seller's name is only in a logo: both names the model found are in the "bill to" block
    block = _page((40, 100, "Bill to:"), (40, 114, "Kunden AG"), (40, 128, "Max Muster"), (300, 100, "Danke"))
    logo = {"seller": {"name": "Kunden AG"}, "buyer": {"name": "Max Muster"}}
    record, why, doubts = repair_parties(logo, schema, block)  # type: ignore[arg-type]
    assert record == logo and why is None
    assert doubts == [("seller.name", "the seller 'Kunden AG' is in the block the page labels as the buyer's")]


def test_a_label_or_a_number_read_as_a_party_name_is_a_doubt() -> None:
    from pipeline.rules.parties import repair_parties

    schema = load_schema(INVOICE_SCHEMA).raw
    page = _page((40, 100, "Käufer"), (40, 114, "Nummer: GE2020211"), (40, 128, "Name: Kunden AG Mitte"))
    seller = {"name": "Lieferant GmbH"}
    for name, why in (("Käufer", "'Käufer' is a label, not a name"),
                      ("Customer:2", "'Customer:2' is a label, not a name"),
                      ("GE2020211", "'GE2020211' is an identifier, not a name"),
                      ("ME@BUYER.COM", "'ME@BUYER.COM' is an address, not a name")):
        record = {"seller": seller, "buyer": {"name": name}}
        assert repair_parties(record, schema, page) == (record, None, [("buyer.name", why)])  # type: ignore[arg-type]
    for name in ("Kunden AG Mitte", "3M Deutschland GmbH", "Client 2000 GmbH"):
        assert repair_parties({"seller": seller, "buyer": {"name": name}}, schema, page)[2] == []  # type: ignore[arg-type]
    # a receipt's printed time read into the shop's address block
    timed = {"seller": {"name": "UNIHAKKA SDN BHD", "address": "20 Mar 2018 17:55"}, "buyer": {"name": "Kunden AG"}}
    assert repair_parties(timed, schema, page)[2] == [  # type: ignore[arg-type]
        ("seller.address", "'20 Mar 2018 17:55' is a date")]
    placed = {"seller": {"name": "UNIHAKKA SDN BHD", "address": "12, JALAN TAMPOI 7/4, 81200 JOHOR BAHRU"},
              "buyer": {"name": "Kunden AG"}}
    assert repair_parties(placed, schema, page)[2] == []  # type: ignore[arg-type]


def test_a_person_the_page_names_as_a_reference_is_no_party() -> None:
    """"Referenz des Käufers : Liselotte Müller" heads an e-invoice's page; the buyer's block under
    "Käufer/Leistungsempfänger:" names ConsultingService GmbH.  Every sample read the person, and
    grounding found her: the line's label says she is a reference, not the buyer."""
    from pipeline.rules.parties import repair_parties

    schema = load_schema(INVOICE_SCHEMA).raw
    page = _page((40, 100, "Referenz"), (94, 100, "des"), (118, 100, "Käufers"), (166, 100, ":"),
                 (178, 100, "Liselotte"), (238, 100, "Müller"), (400, 100, "Kontakt"),
                 (40, 200, "Käufer/Leistungsempfänger:"), (40, 214, "ConsultingService"), (130, 214, "GmbH"))
    seller = {"name": "Elektron GmbH"}
    person = {"seller": seller, "buyer": {"name": "Liselotte Müller"}}
    assert repair_parties(person, schema, page)[2] == [  # type: ignore[arg-type]
        ("buyer.name", "'Liselotte Müller' is printed after 'referenz des kaufers :': a reference, not a party")]
    company = {"seller": seller, "buyer": {"name": "ConsultingService GmbH"}}
    assert repair_parties(company, schema, page)[2] == []  # type: ignore[arg-type]
    # a contact in another column of the same line is not the label of the name
    columns = _page((40, 100, "Ansprechpartner:"), (120, 100, "Herr"), (150, 100, "Kurz"),
                    (400, 100, "Kunden"), (440, 100, "AG"))
    assert repair_parties({"seller": seller, "buyer": {"name": "Kunden AG"}}, schema, columns)[2] == []  # type: ignore[arg-type]


def test_a_party_name_that_is_no_name_is_taken_from_the_block_its_label_heads() -> None:
    """The buyer's number or a reference person read as the buyer: the block under "Käufer:" prints
    the name, after "label : value" lines.  Taken, recorded, and still in doubt (reviewed)."""
    from pipeline.rules.parties import repair_parties

    schema = load_schema(INVOICE_SCHEMA).raw
    page = _page((50, 80, "Referenz des Käufers"), (178, 80, ": Liselotte Müller"),
                 (50, 310, "Käufer:"), (50, 322, "Nummer"), (132, 322, ": GE2020211"),
                 (50, 344, "Kunden AG Mitte"), (50, 355, "Kundenstraße 15"))
    seller = {"name": "Lieferant GmbH"}
    for name, why in (("GE2020211", "'GE2020211' is an identifier, not a name"),
                      ("Liselotte Müller", "'Liselotte Müller' is printed after 'referenz des kaufers :': a "
                                           "reference, not a party")):
        record, note, doubts = repair_parties({"seller": seller, "buyer": {"name": name}}, schema, page)
        assert record["buyer"] == {"name": "Kunden AG Mitte"}
        assert note == f"buyer.name: {name!r} -> 'Kunden AG Mitte' (the name under 'Käufer:'; {why})"
        assert doubts == [("buyer.name", f"{why}; took 'Kunden AG Mitte', the name under 'Käufer:'")]
    # the name after the label on its line; no block the label heads: the doubt alone
    inline = _page((50, 100, "Bill to:"), (100, 100, "ACME Corp"), (50, 114, "1 Main St"))
    assert repair_parties({"seller": seller, "buyer": {"name": "Bill to"}}, schema, inline)[0]["buyer"] == {
        "name": "ACME Corp"}
    unlabelled = _page((50, 100, "GE2020211"), (50, 114, "Kunden AG Mitte"))
    assert repair_parties({"seller": seller, "buyer": {"name": "GE2020211"}}, schema, unlabelled)[:2] == (
        {"seller": seller, "buyer": {"name": "GE2020211"}}, None)


def test_a_party_name_over_a_registered_name_is_a_doubt() -> None:
    """A restaurant's receipt prints its trade name over the company's registered name: the model
    read the trade name, grounding found it.  A name without a legal form over a line that ends in
    one (cleanco's terms, any country's) is in doubt; a name with one, or an address under it, is not."""
    from pipeline.rules.parties import repair_parties

    schema = load_schema(INVOICE_SCHEMA).raw
    page = _page((40, 100, "NAM SAN SEOUL KOREAN BBQ"), (40, 114, "KOREAN DINE SDN BHD(1077469-V)"),
                 (40, 128, "No 4, Jalan Permas 10/5."), (400, 114, "Kunden AG"))
    buyer = {"name": "Walk-in"}
    trade = {"seller": {"name": "NAM SAN SEOUL KOREAN BBQ"}, "buyer": buyer}
    assert repair_parties(trade, schema, page)[2] == [  # type: ignore[arg-type]
        ("seller.name", "'NAM SAN SEOUL KOREAN BBQ' is printed over the registered name "
                        "'KOREAN DINE SDN BHD(1077469-V)'")]
    for name in ("KOREAN DINE SDN BHD", "Segi Cash & Carry Sdn.Bhd"):
        assert repair_parties({"seller": {"name": name}, "buyer": buyer}, schema, page)[2] == []  # type: ignore[arg-type]
    shop = _page((40, 100, "Royaltea"), (40, 114, "No. 23, Jalan Sutera"), (300, 114, "Kunden GmbH"))
    assert repair_parties({"seller": {"name": "Royaltea"}, "buyer": buyer}, schema, shop)[2] == []  # type: ignore[arg-type]


def test_the_one_vat_id_printed_outside_the_buyers_block_is_the_sellers() -> None:
    """The model took the seller's tax number (or GLN) beside its VAT id; an invoice must print its
    seller's VAT id, a buyer's only in the buyer's block or beside a label naming the buyer."""
    from pipeline.rules.vatids import repair_seller_vat_id

    schema = load_schema(INVOICE_SCHEMA).raw
    page = _page((40, 100, "Verkäufer:"), (40, 114, "Lieferant GmbH"), (40, 128, "Steuernummer: 201/113/40209"),
                 (40, 142, "USt.-Id.-Nr.: DE123456789"), (40, 300, "Käufer:"), (40, 314, "Kunden AG Mitte"),
                 (40, 328, "Kundenstraße 15"))
    record = {"seller": {"name": "Lieferant GmbH", "vat_id": "201/113/40209"},
              "buyer": {"name": "Kunden AG Mitte", "vat_id": None}}
    fixed, notes = repair_seller_vat_id(record, schema, [page])  # type: ignore[list-item]
    assert fixed["seller"]["vat_id"] == "DE123456789" and fixed["buyer"] == record["buyer"]
    assert notes == ["seller.vat_id: '201/113/40209' -> 'DE123456789' "
                     "(the one VAT id the pages print, not the buyer's: a seller's by law)"]
    # the id in the buyer's block, or labelled as the buyer's, or two ids: left as they are (a doubt)
    buyers = _page((40, 100, "Lieferant GmbH"), (40, 114, "Steuernummer: 201/113/40209"), (40, 300, "Kunden AG Mitte"),
                   (40, 314, "Kundenstraße 15"), (40, 328, "USt.-Id.-Nr.: FR32123456789"))
    labelled = _page((40, 100, "Lieferant GmbH"), (40, 114, "Ihre USt-IdNr.: FR32123456789"),
                     (40, 300, "Kunden AG Mitte"))
    two = _page((40, 100, "Lieferant GmbH"), (40, 114, "USt-IdNr.: DE123456789"), (300, 114, "ATU12345678"),
                (40, 300, "Kunden AG Mitte"))
    # the buyer's block in the right column, its id on a line the seller's address starts on the left
    right = _page((40, 100, "Lieferant GmbH"), (300, 100, "Kunden AG Mitte"), (40, 114, "Steuernummer: 201/113/40209"),
                  (300, 114, "Kundenstraße 15"), (40, 128, "80333 München"), (300, 128, "USt-IdNr.: FR32123456789"))
    for other in (buyers, labelled, two, right):
        assert repair_seller_vat_id(record, schema, [other]) == (record, [])  # type: ignore[list-item]
    held = {**record, "seller": {"name": "Lieferant GmbH", "vat_id": "DE123456789"}}
    assert repair_seller_vat_id(held, schema, [page]) == (held, [])  # type: ignore[list-item]


def test_a_row_text_cut_at_a_line_break_or_holding_its_amounts_is_a_doubt() -> None:
    from pipeline.rules.products import row_doubts

    rows = [{"description": "Kfz-", "quantity": 1.0, "unit_price": 80.0, "amount": 80.0},
            {"description": "4- 8,41 1 Stk 7 % VAT (S) 8,41", "quantity": 1.0, "unit_price": 8.41, "amount": 8.41},
            {"description": "Schraube M6 2.50 mm", "quantity": 4.0, "unit_price": 0.25, "amount": 1.0},
            {"description": "Vollkasko SF25 (30 %) Typkl. 21", "quantity": 1.0, "unit_price": 140.0, "amount": 140.0}]
    assert row_doubts({"line_items": rows}, RULES) == [
        ("line_items[0].description", "'Kfz-' is cut at a line break"),
        ("line_items[1].description", "'4- 8,41 1 Stk 7 % VAT (S) 8,41' holds the row's own amounts")]
    free = [{"description": "Lebensgefährte/in", "quantity": 0.0, "unit_price": 0.0, "amount": 0.0},
            {"description": "Lebensgefährte/in", "quantity": 1.0, "unit_price": 0.0, "amount": 0.0}]
    assert row_doubts({"line_items": free}, RULES) == [
        ("line_items[0].quantity", "every factor of the row is 0"),
        ("line_items[0].unit_price", "every factor of the row is 0")]


def test_a_row_word_the_page_broke_at_its_hyphen_is_joined_as_printed() -> None:
    """A narrow column wraps "Kfz-Haftpflicht" after its hyphen; the model writes "Kfz- Haftpflicht"
    or stops at "Beamer-". The page proves the join only where the next line starts where the cell's
    text starts, with a capital, and the two words are never printed side by side."""
    from pipeline.rules.rowtext import join_broken_words

    page = _page((58, 100, "1"), (150, 100, "Kfz-"), (260, 100, "67,22 1 Stk 80,00"),
                 (150, 111, "Haftpflicht"),
                 (58, 130, "2"), (150, 130, "Beamer-"), (260, 130, "122,50 1 Stk 122,50"),
                 (150, 141, "Deckenhalterung"),
                 (58, 160, "3"), (150, 160, "Ein-"), (260, 160, "10,00 1 Stk 10,00"),
                 (150, 171, "und Ausgang"),
                 (58, 190, "4"), (150, 190, "Nord-"), (260, 190, "5,00 1 Stk 5,00"),
                 (150, 201, "Süd"), (40, 230, "Nord- Süd Verbindung"),
                 (58, 250, "5"), (150, 250, "Hand-"), (260, 250, "1,00 1 Stk 1,00"),
                 (90, 261, "Schuh"))
    rows = [{"description": "Kfz- Haftpflicht"}, {"description": "Beamer-"}, {"description": "Ein- und Ausgang"},
            {"description": "Nord- Süd"}, {"description": "Hand- Schuh"}]
    record, notes = join_broken_words({"line_items": rows}, RULES, [page])  # type: ignore[list-item]
    assert [r["description"] for r in record["line_items"]] == [
        "Kfz-Haftpflicht", "Beamer-Deckenhalterung", "Ein- und Ausgang", "Nord- Süd", "Hand- Schuh"]
    assert notes == [
        "line_items[0].description: 'Kfz- Haftpflicht' -> 'Kfz-Haftpflicht' (a word the page broke at its hyphen)",
        "line_items[1].description: 'Beamer-' -> 'Beamer-Deckenhalterung' (a word the page broke at its hyphen)"]


def test_a_row_text_printed_away_from_the_rows_amount_is_a_doubt() -> None:
    """A model that lost its place in the table takes a note above it, or the next row's second line,
    as a row's text: printed (grounding finds it) but not in the row's block of lines."""
    from pipeline.rules.products import row_doubts

    page = _page((40, 60, "Rapport-Nr.: 42389 vom 08.03.2018"),
                 (40, 100, "Pos Beschreibung Preis Menge Betrag"),
                 (58, 120, "1"), (150, 120, "TGA"), (300, 120, "43,20 3 129,60"), (150, 131, "Obermonteur"),
                 (58, 160, "2"), (150, 160, "Beamer-Deckenhalterung"), (300, 160, "122,50 1 122,50"),
                 (300, 200, "Summe 251,80"), (300, 211, "USt 47,84"), (300, 222, "Gesamt 299,64"),
                 (40, 260, "Zahlbar sofort"), (40, 300, "Haftpflicht"))
    rows = [{"description": "Rapport-Nr.: 42389 vom 08.03.2018", "quantity": 3.0, "unit_price": 43.2, "amount": 129.6},
            {"description": "Obermonteur", "quantity": 3.0, "unit_price": 43.2, "amount": 129.6},
            {"description": "Beamer-Deckenhalterung", "quantity": 1.0, "unit_price": 122.5, "amount": 122.5},
            {"description": "Haftpflicht", "quantity": 1.0, "unit_price": 122.5, "amount": 122.5},
            {"description": "Montage", "quantity": 1.0, "unit_price": 122.5, "amount": 122.5},
            {"description": "TGA", "quantity": 1.0, "unit_price": 99.0, "amount": 99.0}]
    assert row_doubts({"line_items": rows}, RULES, [page]) == [  # type: ignore[list-item]
        ("line_items[0].description", "'Rapport-Nr.: 42389 vom 08.03.2018' is printed away from the row's amount"),
        ("line_items[3].description", "'Haftpflicht' is printed away from the row's amount")]
    assert row_doubts({"line_items": rows}, RULES) == []  # no page: nothing to say


def test_a_vat_id_the_page_prints_and_no_party_holds_is_a_doubt() -> None:
    """The model took the tax number ("Steuernummer 201/113/40209") or a GLN from the seller's block
    for its VAT id; the USt-IdNr. below it went unread, and nothing flagged the record."""
    from pipeline.rules.evidence import vat_doubts

    schema = load_schema(INVOICE_SCHEMA).raw
    page = _page((40, 100, "Steuernummer: 201/113/40209"), (40, 114, "USt-IdNr.: DE 123 456 789"))
    why = "the page prints the VAT id 'DE123456789', which no party holds, and this holds "
    for wrong in ("201/113/40209", "4000001123452", None):
        record = {"seller": {"name": "Lieferant GmbH", "vat_id": wrong},
                  "buyer": {"name": "Kunde", "vat_id": "ATU12345678"}}
        assert vat_doubts(record, schema, [page]) == [("seller.vat_id", why + repr(wrong))]  # type: ignore[list-item]
    # held by a party (however grouped): no doubt; the check digits do not decide, sample invoices print fakes
    held = {"seller": {"vat_id": "DE123456789"}, "buyer": {"vat_id": None}}
    assert vat_doubts(held, schema, [page]) == []  # type: ignore[list-item]
    # no VAT id printed: a tax number is all there is, and no doubt
    alone = _page((40, 100, "Steuernummer: 201/113/40209"), (40, 114, "EN16931 DE0001346484600000000000000100038"))
    assert vat_doubts({"seller": {"vat_id": "201/113/40209"}}, schema, [alone]) == []  # type: ignore[list-item]
    from pipeline.errors import SchemaError
    from pipeline.model.prompt import prompt_schema
    from pipeline.schema.compiled import compile_schema
    from pipeline.schema.grammar import answer_schema

    party = schema["$defs"]["party"]
    bad = {**schema, "$defs": {**schema["$defs"], "party": {**party, "properties": {
        **party["properties"], "vat_id": {**party["properties"]["vat_id"], "x-identifier": "iban"}}}}}
    with pytest.raises(SchemaError, match="x-identifier at .* must be one of vat; got 'iban'"):
        compile_schema(bad, "a schema")
    assert "x-identifier" not in json.dumps(prompt_schema(answer_schema(schema)))


def test_vat_ids_read_across_a_two_column_header_are_swapped_back() -> None:
    """The seller's address ran onto the line of the buyer's VAT id: the model gave each party the
    other's id (both printed, so nothing flagged it)."""
    from pipeline.rules.vatids import uncross_vat_ids

    schema = load_schema(INVOICE_SCHEMA).raw
    page = _page((40, 40, "Fornitore"), (320, 40, "Cliente"), (40, 54, "Trebbi SPA"), (320, 54, "Borghese Group"),
                 (40, 68, "Contrada Alphons 1, 74100 San"), (320, 68, "Vicolo Cesare 15, 12026 Piasco"),
                 (40, 82, "Vito Taranto"), (320, 82, "Partita IVA IT30671460639"),
                 (40, 96, "Partita IVA IT37575770179"))
    crossed = {"seller": {"name": "Trebbi SPA", "vat_id": "IT30671460639", "address": "Contrada Alphons 1"},
               "buyer": {"name": "Borghese Group", "vat_id": "IT37575770179", "address": "Partita IVA IT30671460639"}}
    record, notes = uncross_vat_ids(crossed, schema, page)  # type: ignore[arg-type]
    assert record["seller"]["vat_id"] == "IT37575770179" and record["buyer"]["vat_id"] == "IT30671460639"
    assert notes and "printed in the buyer's block" in notes[0]
    # each id in its own block: nothing to say
    assert uncross_vat_ids(record, schema, page) == (record, [])  # type: ignore[arg-type]
    # one id in the other's block is no proof (a reverse-charge buyer's id may be printed anywhere)
    one = {**crossed, "buyer": {**crossed["buyer"], "vat_id": None}}
    assert uncross_vat_ids(one, schema, page) == (one, [])  # type: ignore[arg-type]


def test_a_block_read_into_the_wrong_fields_is_a_doubt() -> None:
    """A postcode taken for the VAT id of a page that prints none; the VAT id's line taken for the
    address: each value printed, so grounding and the votes said nothing."""
    from pipeline.rules.vatids import misplaced_ids

    schema = load_schema(INVOICE_SCHEMA).raw
    record = {"seller": {"name": "Brewer Ltd", "vat_id": "9866", "address": "18/1 Angel Trailer, Hobart, TAS, 9866"},
              "buyer": {"name": "Carosone e figli", "vat_id": "IT11749030414", "address": "Partita IVA IT11749030414"}}
    assert [path for path, _ in misplaced_ids(record, schema)] == ["seller.vat_id", "buyer.address"]
    # an address that prints its VAT id beside its street and postcode is an address; a VAT id is one
    right = {"seller": {"name": "Trebbi SPA", "vat_id": "IT30671460639", "address": "Via Roma 1, 74100 Taranto"},
             "buyer": {"name": "Piła sp.", "vat_id": "PL6828329500", "address": "Al. Sucharskiego 59, 74-781 Piła "
                                                                             "(NIP PL6828329500)"}}
    assert misplaced_ids(right, schema) == []


def test_a_number_is_the_one_its_label_points_at() -> None:
    """"Handelsrechnung (380) Nr. 471102": the model took the type code beside the title."""
    from pipeline.errors import SchemaError
    from pipeline.rules.labels import repair_labelled
    from pipeline.schema.compiled import compile_schema

    schema = load_schema(INVOICE_SCHEMA).raw
    title = _page((60, 50, "Handelsrechnung (380) Nr. 471102 vom 05.03.2018"), (60, 90, "Nummer: 549910"))
    record, notes, doubts = repair_labelled({"invoice_number": "380"}, schema, [title])  # type: ignore[list-item]
    assert record["invoice_number"] == "471102" and doubts == []
    assert notes == ["invoice_number: '380' -> '471102' (the value the page labels so)"]
    assert repair_labelled({"invoice_number": "471102"}, schema, [title]) == (  # type: ignore[list-item]
        {"invoice_number": "471102"}, [], [])
    assert repair_labelled({"invoice_number": None}, schema, [title])[0] == {  # type: ignore[list-item]
        "invoice_number": "471102"}  # not found by the model, printed after its label
    # a column's header labels the value under it; "Invoice Date" labels no number
    table = _page((40, 100, "Invoice Number"), (300, 100, "Invoice Date"), (40, 114, "INV-17"),
                  (300, 114, "01/02/2026"))
    assert repair_labelled({"invoice_number": "17"}, schema, [table])[0] == {  # type: ignore[list-item]
        "invoice_number": "INV-17", "issue_date": "2026-02-01"}  # the date under its header too
    # ... also with the next column's header right beside it (the e-invoice stylesheet's payment terms)
    terms = _page((180, 344, "Beschreibung"), (391, 344, "Fälligkeit"), (472, 344, "Teilzahlung"),
                  (391, 357, "30.11.2018"))
    assert repair_labelled({"due_date": "2018-10-31"}, schema, [terms])[0] == {  # type: ignore[list-item]
        "due_date": "2018-11-30"}
    assert repair_labelled({"due_date": None}, schema, [_page((391, 344, "Fälligkeit sofort"),  # type: ignore[list-item]
                                                                (60, 357, "30.11.2018"))])[0] == {"due_date": None}
    # the issue date is the invoice's, not the order's printed above it
    dated = _page((40, 100, "Order Date: 15-10-2015"), (40, 114, "Invoice Date: 20-10-2015"))
    assert repair_labelled({"issue_date": "2015-10-15"}, schema, [dated])[0] == {  # type: ignore[list-item]
        "issue_date": "2015-10-20"}
    # a date in words after its label is several words ("9 giu 2026": the model wrote July)
    header = _page((40, 100, "Numero fattura: FT-1 | Data fattura: 10 apr 2026 | Scadenza: 9 giu 2026"))
    for held in ("2026-07-09", None):
        assert repair_labelled({"due_date": held}, schema, [header])[0]["due_date"] == "2026-06-09"  # type: ignore[list-item]
    # a label with a letter Unicode does not decompose ("ł") matches its plain spelling ("termin platnosci")
    polish = _page((40, 100, "Data wystawienia: 14 lip 2025 | Termin płatności: 13 sie 2025"))
    assert repair_labelled({"due_date": "2025-05-13"}, schema, [polish])[0]["due_date"] == "2025-08-13"  # type: ignore[list-item]
    # a credit note labels its own number and the invoice's it corrects: the record holds neither
    credit = _page((40, 100, "Gutschrift Nr. G-5"), (40, 114, "zu Rechnung Nr. 4711"))
    record, notes, doubts = repair_labelled({"invoice_number": "5"}, schema, [credit])  # type: ignore[list-item]
    assert record == {"invoice_number": "5"} and notes == []
    assert doubts == [("invoice_number", "the page labels 4711, G-5 as this field, not '5'")]
    unlabelled = _page((40, 100, "Invoice 2026-17"), (40, 114, "Order no. 88"))
    assert repair_labelled({"invoice_number": "2026-17"}, schema, [unlabelled]) == (  # type: ignore[list-item]
        {"invoice_number": "2026-17"}, [], [])
    bad = {**schema, "properties": {**schema["properties"], "invoice_number": {
        **schema["properties"]["invoice_number"], "x-labels": "invoice no"}}}
    with pytest.raises(SchemaError, match=r"x-labels of \$\.properties\.invoice_number"):
        compile_schema(bad, "a schema")
    rows = {**schema, "$defs": {**schema["$defs"], "line_item": {**schema["$defs"]["line_item"], "properties": {
        **schema["$defs"]["line_item"]["properties"], "description": {"type": "string", "x-labels": []}}}}}
    with pytest.raises(SchemaError, match=r"x-labels of \$\.\$defs\.line_item\.properties\.description"):
        compile_schema(rows, "a schema")  # a row's column headings are checked too
    from pipeline.model.prompt import prompt_schema
    from pipeline.schema.grammar import answer_schema

    assert "x-labels" not in json.dumps(prompt_schema(answer_schema(schema)))  # the program's, not the model's


def test_the_currency_is_the_one_the_pages_prove_or_a_doubt() -> None:
    from pipeline.rules.currency import repair_currency

    schema = json.loads(INVOICE_SCHEMA.read_text())
    euros = _page((50, 100, "Service A 12 €10.00 €120.00"), (50, 120, "Total: €127.50"))
    record, notes, doubts = repair_currency({"currency": "USD", "total_amount": 127.5}, schema, [euros])
    assert record["currency"] == "EUR" and doubts == []
    assert notes == ["currency: USD -> EUR (the only currency the pages print: '€10.00')"]
    assert repair_currency({"currency": "EUR"}, schema, [euros]) == ({"currency": "EUR"}, [], [])
    # a bare "$" is five of the schema's currencies: the model's choice stays, in doubt, never filled
    dollars = _page((50, 100, "Total: $127.50"))
    for held in ("USD", None):
        record, notes, doubts = repair_currency({"currency": held}, schema, [dollars])
        assert record["currency"] == held and notes == []
        assert doubts[0][0] == "currency" and "'$127.50'" in doubts[0][1] and "USD" in doubts[0][1]
    # a currency the page shows no sign of is dropped, still in doubt
    record, notes, doubts = repair_currency({"currency": "EUR"}, schema, [dollars])
    assert record["currency"] is None and notes[0].startswith("currency: EUR -> null") and doubts
    assert repair_currency({"currency": "MYR"}, schema, [_page((50, 100, "Total: $127.50 USD"))])[0][
        "currency"] == "USD"  # the code says which dollar
    assert repair_currency({"currency": "USD"}, schema, [_page((50, 100, "Total CA$15.00"))])[0]["currency"] == "CAD"
    # "kr" is three crowns; a valid Norwegian VAT id (python-stdnum) or a Danish IBAN (schwifty) says which
    crowns = (50, 100, "Totalt kr 1 939,00")
    norwegian = _page(crowns, (50, 700, "Org.nr NO 974 760 673 MVA"))
    record, notes, doubts = repair_currency({"currency": "SEK"}, schema, [norwegian])
    assert record["currency"] == "NOK" and doubts == [] and "settled by the VAT id or IBAN of NO" in notes[0]
    danish = _page(crowns, (50, 700, "IBAN DK50 0040 0440 1162 43"))
    assert repair_currency({"currency": None}, schema, [danish])[0]["currency"] == "DKK"
    assert repair_currency({"currency": "SEK"}, schema, [_page(crowns)])[2][0][0] == "currency"  # nothing says
    # a receipt that prints no currency: an address ending in a state only Malaysia has, after its postcode
    receipt = _page((50, 100, "TOTAL 9.00"), (50, 120, "81200 JOHOR BAHRU,JOHOR"))
    assert repair_currency({"currency": "MYR"}, schema, [receipt]) == ({"currency": "MYR"}, [], [])
    assert repair_currency({"currency": "MYR"}, schema, [_page((50, 100, "TOTAL 9.00"), (50, 120, "Limburg 12345"))]
                           )[2][0][0] == "currency"  # a region of two countries proves nothing
    # a currency printed for sure beside a shared sign: the record's, if the sure one, stands (not nulled)
    legal = _page((50, 100, "Rechnungswährung : EUR"), (50, 140, "steuerfrei nach $4 Nr. 10a UStG"))
    assert repair_currency({"currency": "EUR"}, schema, [legal]) == ({"currency": "EUR"}, [], [])
    record, notes, doubts = repair_currency({"currency": "USD"}, schema, [legal])
    assert record["currency"] == "USD" and notes == [] and "the pages print EUR and '$4'" in doubts[0][1]
    # two currencies printed: the record's, if one of them, stands; another is in doubt
    both = _page((50, 100, "Total CHF 12.00 (EUR 10.50)"))
    assert repair_currency({"currency": "CHF"}, schema, [both]) == ({"currency": "CHF"}, [], [])
    assert repair_currency({"currency": "GBP"}, schema, [both])[2] == [
        ("currency", "the pages print several currencies: CHF, EUR")]
    # no currency on the page: the model's value is its own guess
    silent = _page((50, 100, "Total 12.00 for 5 items, PHP hosting"))
    assert repair_currency({"currency": "EUR"}, schema, [silent])[2] == [
        ("currency", "no currency printed on the pages")]
    # a word sign counts next to an amount with cents, or as a column's unit; a room number or "form" does not
    for words in (("TOTAL", "RM", "96.90"), ("RM96.90",), ("Amt(RM)",)):
        ringgit = _page(*((50 + 40 * i, 100, w) for i, w in enumerate(words)))
        assert repair_currency({"currency": "EUR"}, schema, [ringgit])[0]["currency"] == "MYR"
    assert repair_currency({"currency": None}, schema, [_page((50, 100, "Razem 1 234,50 zł"))])[0]["currency"] == "PLN"
    for line in ("RM 1203, 12/F Tower 12.00 EUR", "form 12.00 EUR", "10 Ft cable 12.00 EUR"):
        assert repair_currency({"currency": "EUR"}, schema, [_page((50, 100, line))]) == ({"currency": "EUR"}, [], [])


def test_a_row_that_is_not_goods_is_dropped_once_the_pages_rows_are_together() -> None:
    """Page 1 has the goods, page 2 a payment line and the totals: no page alone can tell."""
    from typing import Any

    from pipeline.merge.assemble import DocumentAssembler
    from pipeline.results import PageResult

    class Writer:
        def add_document(self, document: dict[str, Any], pages: list[dict[str, Any]]) -> None:
            self.document = document

    schema = load_schema(INVOICE_SCHEMA)
    writer = Writer()
    assembler = DocumentAssembler(schema, {}, writer)  # type: ignore[arg-type]
    goods = [{"description": "support", "quantity": 1.0, "unit_price": 60.0, "amount": 60.0},
             {"description": "paper", "quantity": 3.0, "unit_price": 10.0, "amount": 30.0}]
    paid = {"description": "paid by card", "quantity": 1.0, "unit_price": 5.0, "amount": 50.0}
    party = {"name": "ACME", "vat_id": None, "address": None}
    first = {"invoice_number": "R-7", "currency": "EUR", "seller": party, "buyer": party, "line_items": goods}
    last = {"line_items": [paid], "net_amount": 90.0, "tax_amount": 9.0, "total_amount": 99.0}
    for number, record in ((1, first), (2, last)):
        assembler.add(PageResult("a.pdf", "a" * 64, number, 2, status="ok", record=record))
    document = writer.document
    assert document["error"] is None, document["error"]
    assert document["line_items"] == goods and document["rule_failures"] == []
    assert document["repairs"] == ["document: line_items: 1 rows that are not goods dropped (lines_sum_to_net "
                                   "holds without them)"]
    assert not document["needs_review"], document["review_reasons"]
    assert assembler.traces["repairs"] == 1


def test_the_one_row_that_is_the_excess_over_consistent_totals_is_dropped() -> None:
    """A gross price printed under a row, read as one more row: it breaks no product."""
    rows = [{"description": d, "quantity": 1.0, "unit_price": a, "amount": a}
            for d, a in (("hotel", 158.88), ("breakfast", 11.76), ("taxi", 23.36), ("taxi", 20.09), ("gross", 21.5))]
    record = {"net_amount": 214.09, "tax_amount": 16.39, "total_amount": 230.48, "line_items": rows}
    repaired, notes = repair_totals(record, RULES, [])
    assert repaired["line_items"] == rows[:4] and rule_failures(RULES, repaired) == []
    assert notes == ["line_items: row 5 (21.5) dropped, the rows' excess over the totals (lines_sum_to_net holds "
                     "without it)"]
    # two rows of the excess's amount, or totals that do not agree: nothing proves which row
    twice = {**record, "line_items": [*rows, rows[4]]}
    assert repair_totals({**twice, "net_amount": 214.09 + 21.5, "total_amount": 230.48 + 21.5}, RULES, [])[1] == []
    assert repair_totals({**record, "tax_amount": 16.0}, RULES, [])[1] == []


def test_a_repair_adds_up_to_the_cent_and_never_by_an_amount_of_nothing() -> None:
    """A street number within the rule's rounding tolerance of the sum, or 0.01 as a tax, is no repair."""
    record = {"net_amount": 29.99, "tax_amount": 5.0, "total_amount": 29.99, "line_items": []}
    # 24.99 + 5 = 29.99 exactly; 29.99 + 5 = 34.99 is within 0.02 of a printed 35 ("35 rue ...")
    repaired, notes = repair_totals(record, RULES, [29.99, 5.0, 24.99, 35.0])
    assert repaired["net_amount"] == 24.99 and notes == ["net_amount: 29.99 -> 24.99 (net_plus_tax_is_total)"]
    gross_as_net = {"net_amount": 104.9, "tax_amount": 2.2, "total_amount": 104.9, "line_items": []}
    assert repair_totals(gross_as_net, RULES, [104.9, 2.2, 0.01, 100.0])[1] == []  # a tax of 0.01 "fits": not taken


def test_allowances_and_charges_below_the_rows_are_part_of_the_sum() -> None:
    goods = [{"description": d, "quantity": 1.0, "unit_price": a, "amount": a} for d, a in (("support", 60.0),
                                                                                           ("paper", 35.0))]
    record = {"allowance_total": -5.0, "charge_total": 10.0, "net_amount": 100.0, "tax_amount": 10.0,
              "total_amount": 110.0, "line_items": goods}
    assert rule_failures(RULES, record) == []  # 95 - 5 + 10 = 100, a discount printed with its minus or without
    assert rule_failures(RULES, {**record, "allowance_total": 5.0}) == []
    assert rule_failures(RULES, {**record, "charge_total": None}) == ["lines_sum_to_net"]
    credit = {**record, "net_amount": -100.0, "tax_amount": -10.0, "total_amount": -110.0,
              "line_items": [{**row, "unit_price": -row["amount"], "amount": -row["amount"]} for row in goods]}
    assert rule_failures(RULES, credit) == []  # on a credit note the charges are negative like the rows


def test_the_discount_and_the_charge_read_as_rows_too_are_dropped_from_the_rows() -> None:
    goods = [{"description": "support", "quantity": 1.0, "unit_price": 60.0, "amount": 60.0},
             {"description": "paper", "quantity": 3.0, "unit_price": 10.0, "amount": 30.0},
             {"description": "call", "quantity": 1.0, "unit_price": 5.0, "amount": 5.0}]
    rows = [*goods, {"description": "discount", "quantity": 1.0, "unit_price": 5.0, "amount": -5.0},
            {"description": "travel", "quantity": None, "unit_price": None, "amount": 12.0}]
    record = {"allowance_total": 5.0, "charge_total": 12.0, "net_amount": 102.0, "tax_amount": 10.2,
              "total_amount": 112.2, "line_items": rows}
    repaired, notes = repair_totals(record, RULES, [])
    assert repaired["line_items"] == goods and rule_failures(RULES, repaired) == []
    assert notes == ["line_items: 2 rows that are not goods dropped (lines_sum_to_net holds without them)"]


def test_an_allowance_the_rows_do_not_need_is_taken_back() -> None:
    """Asked for a document discount, a small model writes a line's discount or a subtotal there."""
    goods = [{"description": "support", "quantity": 1.0, "unit_price": 60.0, "amount": 60.0},
             {"description": "paper", "quantity": 3.0, "unit_price": 10.0, "amount": 30.0}]
    record = {"allowance_total": 12.5, "charge_total": None, "net_amount": 90.0, "tax_amount": 9.0,
              "total_amount": 99.0, "line_items": goods}
    repaired, notes = repair_totals(record, RULES, [])
    assert repaired["allowance_total"] is None and rule_failures(RULES, repaired) == []
    assert notes == ["allowance_total: 12.5 -> None (lines_sum_to_net holds without it)"]
    # one amount as both discount and charge: they cancel, the rows need neither, both go
    cancel, notes = repair_totals({**record, "charge_total": 12.5}, RULES, [])
    assert cancel["allowance_total"] is None and cancel["charge_total"] is None and len(notes) == 1
    # the net copied one field early: the rows do not add up either way, so it proves nothing
    early = {**record, "allowance_total": 90.0, "net_amount": 95.0, "total_amount": 104.0}
    repaired, notes = repair_totals(early, RULES, [])
    assert repaired["allowance_total"] is None
    assert notes == ["allowance_total: 90.0 -> None (lines_sum_to_net does not prove it)"]
    # the net and the tax copied one field early: rows + "charge" (the tax) = total holds, but they restate totals
    shifted = {**record, "allowance_total": 90.0, "charge_total": 9.0}
    repaired, notes = repair_totals(shifted, RULES, [])
    assert repaired["allowance_total"] is None and repaired["charge_total"] is None
    assert notes == ["allowance_total: 90.0 -> None (restates a total); charge_total: 9.0 -> None (restates a total)"]
    # a charge that happens to equal the tax stays where the rows need it
    needed = {**record, "allowance_total": 5.0, "charge_total": 9.5, "net_amount": 94.5, "tax_amount": 9.5,
              "total_amount": 104.0}
    assert repair_totals(needed, RULES, []) == (needed, [])
    # proved (the rows need it), or a rule that cannot be checked (no rows): kept as read
    proved = {**record, "net_amount": 77.5, "tax_amount": 7.75, "total_amount": 85.25}
    assert repair_totals(proved, RULES, []) == (proved, [])
    assert repair_totals({**record, "line_items": []}, RULES, [])[0]["allowance_total"] == 12.5


def test_a_total_read_wrong_on_one_page_is_repaired_from_the_amounts_of_all_pages() -> None:
    """Page by page the totals rules do not hold; the document's repair has every page's amounts."""
    from typing import Any

    from pipeline.merge.assemble import DocumentAssembler
    from pipeline.results import PageResult

    class Writer:
        def add_document(self, document: dict[str, Any], pages: list[dict[str, Any]]) -> None:
            self.document = document

    assembler = DocumentAssembler(load_schema(INVOICE_SCHEMA), {}, Writer())  # type: ignore[arg-type]
    party = {"name": "ACME", "vat_id": None, "address": None}
    goods = [{"description": "support", "quantity": 1.0, "unit_price": 24.99, "amount": 24.99}]
    first = {"invoice_number": "F-1", "currency": "EUR", "seller": party, "buyer": party, "line_items": goods,
             "net_amount": 29.99, "tax_amount": 5.0, "total_amount": 29.99}  # the gross read as the net
    assembler.add(PageResult("f.pdf", "f" * 64, 1, 2, status="ok", record=first, printed=_printed([29.99, 5.0])))
    assembler.add(PageResult("f.pdf", "f" * 64, 2, 2, status="ok", record={"line_items": []},
                             printed=_printed([24.99, 29.99])))
    document = assembler.writer.document  # type: ignore[attr-defined]
    assert document["net_amount"] == 24.99 and document["rule_failures"] == []
    assert document["repairs"] == ["document: net_amount: 29.99 -> 24.99 (net_plus_tax_is_total)"]


def test_a_rows_wrong_factor_is_taken_from_its_own_printed_line() -> None:
    from pipeline.rules.products import repair_products

    rows = [{"description": "Kommissionierer", "quantity": 27.5, "unit_price": 15.0, "amount": 288.75},  # gross price
            {"description": "Hot air", "quantity": 800.0, "unit_price": 25.0, "amount": 20.0},  # holds per 1,000 only
            {"description": "Beratung", "quantity": 1.0, "unit_price": 67.22, "amount": 80.0}]  # nothing on its line
    lines = [{3.0, 10.5, 27.5, 19.0, 288.75}, {15.0, 4.5}, {800.0, 19.0, 0.025, 20.0}, {1.0, 67.22, 80.0}]
    repaired, notes = repair_products({"line_items": rows}, RULES, lines)
    assert [r["unit_price"] for r in repaired["line_items"]] == [10.5, 0.025, 67.22]
    assert notes == ["line_items[0].unit_price: 15.0 -> 10.5 (the row's printed line; quantity_times_price_is_amount)",
                     "line_items[1].unit_price: 25.0 -> 0.025 (the row's printed line; quantity_times_price_is_amount)"]
    # two numbers on the line that would each do (a price of 10.50, or 19.25 at 15.00): nothing proves which
    two = [{27.5, 288.75, 10.5, 15.0, 19.25}]
    assert repair_products({"line_items": rows[:1]}, RULES, two)[1] == []
    # the row's line must print its amount and its other factor
    assert repair_products({"line_items": rows[:1]}, RULES, [{27.5, 10.5}, {288.75}])[1] == []


def test_an_allowance_and_a_charge_the_model_left_out_are_filled_from_the_page() -> None:
    rows = [{"description": "a", "quantity": 1.0, "unit_price": 300.0, "amount": 300.0},
            {"description": "b", "quantity": 1.0, "unit_price": 110.1, "amount": 110.1}]
    record = {"net_amount": 403.55, "tax_amount": 76.67, "total_amount": 480.22, "line_items": rows,
              "allowance_total": None, "charge_total": None}
    repaired, notes = repair_totals(record, RULES, [300.0, 110.1, 403.55, 76.67, 480.22, 21.55, 15.0, 19.0, 2.0])
    assert (repaired["allowance_total"], repaired["charge_total"]) == (21.55, 15.0)  # 410.10 - 21.55 + 15.00
    assert rule_failures(RULES, repaired) == [] and len(notes) == 1 and "the page prints it" in notes[0]
    # a second pair that fits as well (31.55 and 25.00) proves nothing: the rule keeps failing
    assert repair_totals(record, RULES, [300.0, 110.1, 403.55, 76.67, 480.22, 21.55, 15.0, 31.55, 25.0])[1] == []


def test_a_receipts_cash_read_as_its_total_is_undone_by_the_printed_rate() -> None:
    # NET TOTAL 90.00, CASH 100.00, change 10.00; GST summary "S = 6%  84.90  5.10"
    record = {"net_amount": 90.0, "tax_amount": 84.9, "total_amount": 100.0, "line_items": []}
    page = [90.0, 100.0, 10.0, 84.9, 5.1, 45.0, 2.0]
    # without the rates, the one amount that adds up makes the change the tax
    assert repair_totals(record, RULES, page)[0]["tax_amount"] == 10.0
    repaired, notes = repair_totals(record, RULES, page, rates=[6.0])
    assert (repaired["net_amount"], repaired["tax_amount"], repaired["total_amount"]) == (84.9, 5.1, 90.0)
    assert notes == ["net_amount: 90.0 -> 84.9; tax_amount: 84.9 -> 5.1; total_amount: 100.0 -> 90.0 "
                     "(net_plus_tax_is_total: the one printed set at a printed rate)"]
    # a one-field repair at a printed rate is still the one taken, within the rule's rounding
    rounded = {"net_amount": 50.9, "tax_amount": 2.88, "total_amount": 50.9, "line_items": []}
    assert repair_totals(rounded, RULES, [50.92, 0.02, 50.9, 48.04, 2.88], rates=[6.0])[0]["net_amount"] == 48.04


def _printed(amounts: list[float], rates: list[float] | None = None) -> dict[str, list[float]]:
    return {"amounts": amounts, "rates": rates or [], "row_totals": []}


def test_a_documents_repair_has_the_rates_its_pages_print() -> None:
    """The receipt above over two pages: page 1 has the totals as read, page 2 the tax summary
    with its 6 %. Only the document sees both; its repair needs the rate as a page's does."""
    from typing import Any

    from pipeline.merge.assemble import DocumentAssembler
    from pipeline.results import PageResult

    class Writer:
        def add_document(self, document: dict[str, Any], pages: list[dict[str, Any]]) -> None:
            self.document = document

    assembler = DocumentAssembler(load_schema(INVOICE_SCHEMA), {}, Writer())  # type: ignore[arg-type]
    party = {"name": "KEDAI", "vat_id": None, "address": None}
    record = {"invoice_number": "R-1", "currency": "MYR", "seller": party, "buyer": party, "net_amount": 90.0,
              "tax_amount": 84.9, "total_amount": 100.0, "line_items": []}
    assembler.add(PageResult("r.pdf", "r" * 64, 1, 2, status="ok", record=record,
                             printed=_printed([90.0, 100.0, 10.0])))
    assembler.add(PageResult("r.pdf", "r" * 64, 2, 2, status="ok", record={"line_items": []},
                             printed=_printed([84.9, 5.1, 45.0, 2.0], rates=[6.0])))
    document = assembler.writer.document  # type: ignore[attr-defined]
    assert document["status"] == "ok", document["error"]
    assert (document["net_amount"], document["tax_amount"], document["total_amount"]) == (84.9, 5.1, 90.0)
    assert document["repairs"] == ["document: net_amount: 90.0 -> 84.9; tax_amount: 84.9 -> 5.1; total_amount: "
                                   "100.0 -> 90.0 (net_plus_tax_is_total: the one printed set at a printed rate)"]


def test_an_amount_printed_as_a_rows_is_no_allowance_or_charge() -> None:
    from pipeline.rules.products import row_totals

    lines = [{1.0, 12.0, 145.63, 1747.56}, {124606.18}, {2.0, 3.0}]  # "Cloud-Hosting 12 x 145,63 = 1.747,56"
    assert row_totals(lines) == {1747.56}
    rows = [{"description": "a", "quantity": 1.0, "unit_price": 100.0, "amount": 100.0}]
    record = {"net_amount": 1847.56, "tax_amount": 0.0, "total_amount": 1847.56, "line_items": rows}
    page = [100.0, 1847.56, 1747.56, 12.0, 145.63]
    assert repair_totals(record, RULES, page)[0]["charge_total"] == 1747.56  # without the lines: taken for a charge
    assert repair_totals(record, RULES, page, row_totals=row_totals(lines))[1] == []  # a row left out: left to the flag


def test_the_one_empty_field_of_an_add_rule_is_filled_where_the_others_fix_it_and_the_page_prints_it() -> None:
    exempt = {"net_amount": 2000.0, "tax_amount": None, "total_amount": 2000.0, "line_items": []}
    repaired, notes = repair_totals(exempt, RULES, [2000.0, 100.0, 0.0])
    assert repaired["tax_amount"] == 0.0
    assert notes == ["tax_amount: None -> 0.0 (net_plus_tax_is_total: the other fields make it, "
                     "and the page prints it)"]
    assert repair_totals(exempt, RULES, [2000.0, 100.0])[1] == []  # no 0,00 on the page: left empty
    receipt = {"net_amount": None, "tax_amount": 5.48, "total_amount": 96.9, "line_items": []}
    assert repair_totals(receipt, RULES, [96.9, 5.48, 106.0])[0]["net_amount"] is None  # 91.42 is printed nowhere


def test_one_request_that_left_a_blank_page_unread_is_repaired_as_the_document() -> None:
    """Pages 1-2 read together, page 3 blank: the request did not read the whole document, so its
    page was not repaired, and the document's repair must not skip it as if it had."""
    from typing import Any

    from pipeline.merge.assemble import DocumentAssembler
    from pipeline.results import PageResult

    class Writer:
        def add_document(self, document: dict[str, Any], pages: list[dict[str, Any]]) -> None:
            self.document = document

    assembler = DocumentAssembler(load_schema(INVOICE_SCHEMA), {}, Writer())  # type: ignore[arg-type]
    party = {"name": "MVM", "vat_id": None, "address": None}
    exempt = {"invoice_number": "7-2018", "currency": "EUR", "seller": party, "buyer": party, "line_items": [],
              "net_amount": 1163.4, "tax_amount": None, "total_amount": 1163.4}
    assembler.add(PageResult("f.pdf", "f" * 64, 1, 3, status="ok", record=exempt, pages_read=2,
                             printed=_printed([1000.0, 1163.4, 163.4, 0.0], [16.34])))
    assembler.add(PageResult("f.pdf", "f" * 64, 2, 3, status="ok", record=None))
    assembler.add(PageResult("f.pdf", "f" * 64, 3, 3, status="ok", record=None, page_kind="blank"))
    document = assembler.writer.document  # type: ignore[attr-defined]
    assert document["tax_amount"] == 0.0
    assert document["repairs"] == ["document: tax_amount: None -> 0.0 (net_plus_tax_is_total: the other fields "
                                   "make it, and the page prints it)"]


def test_a_row_text_under_another_columns_heading_is_taken_from_its_own_column() -> None:
    """The customer's article number is the first text of the row, the description one column on: a
    small model takes the number ("Toolbox") for the description ("Stahlcoil").  Both are printed on
    the row's line, so only the table's headings tell them apart (the schema's row ``x-labels``); the
    headings stand on the page before the one that prints the rows."""
    from pipeline.rules.columns import repair_columns

    schema = load_schema(INVOICE_SCHEMA).raw
    heads = _page((74, 735, "Art-Nr-Kunde"), (40, 752, "Pos"), (151, 752, "Beschreibung"), (244, 752, "Nettopreis"),
                  (358, 752, "Menge"), (505, 752, "Entgelt"))
    rows_page = _page((56, 58, "1"), (69, 58, "Toolbox"), (140, 58, "Stahlcoil 2 mm"), (294, 58, "100,00"),
                      (370, 58, "10 Stk"), (505, 58, "1000,00"), (69, 69, "0815"),
                      (56, 100, "2"), (69, 100, "Lager"), (160, 100, "Regal"), (294, 100, "50,00"),
                      (370, 100, "1 Stk"), (505, 100, "50,00"), (160, 111, "aus Buche"),
                      (56, 140, "3"), (160, 140, "Toolbox"), (294, 140, "20,00"), (370, 140, "1 Stk"),
                      (505, 140, "20,00"))
    row = {"quantity": 10.0, "unit_price": 100.0, "amount": 1000.0}
    rows = [{**row, "description": "Lager"}, {**row, "description": "Stahlcoil 2 mm"},
            {**row, "description": "Toolbox 0815 Stahlcoil"}]
    record, notes, doubts = repair_columns({"line_items": rows}, RULES, [heads, rows_page], schema)
    assert [r["description"] for r in record["line_items"]] == ["Regal", "Stahlcoil 2 mm", "Toolbox 0815 Stahlcoil"]
    assert notes == ["line_items[0].description: 'Lager' -> 'Regal' ('Lager' is printed under 'Art-Nr-Kunde', "
                     "where the column 'Beschreibung' prints 'Regal')"]
    # the column goes on under "Regal": the row's text may be longer than its first line
    assert doubts == [("line_items[0].description", "'Regal' is the first line of the column 'Beschreibung'; "
                                                    "it goes on below")]
    # "Toolbox" is also printed under "Beschreibung" (row 3): the page does not say which is meant
    toolbox = {"line_items": [{**row, "description": "Toolbox"}]}
    assert repair_columns(toolbox, RULES, [heads, rows_page], schema)[1:] == ([], [])
    alone = _page((56, 58, "1"), (69, 58, "Toolbox"), (140, 58, "Stahlcoil"), (505, 58, "1000,00"))
    assert repair_columns(toolbox, RULES, [heads, alone], schema)[0]["line_items"][0]["description"] == "Stahlcoil"
    # no heading the schema names: nothing to say; a label word inside a sentence heads no column
    assert repair_columns(toolbox, RULES, [alone], schema) == (toolbox, [], [])
    sentence = _page((40, 20, "Beschreibung der Leistungen:"), (160, 20, "Wartung"))
    assert repair_columns(toolbox, RULES, [sentence, alone], schema) == (toolbox, [], [])
