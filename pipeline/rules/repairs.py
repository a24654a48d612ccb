"""What the pages prove about a voted record, applied in one order.

Each step is a repair the page's own words justify, recorded as it is made: a row's factor from
its printed line (``rules.products``), a row's text from its own column where the model took
another column's (``rules.columns``), a row's word the page broke at its hyphen
(``rules.rowtext``), a date that breaks an ``order`` rule (``rules.order``), the totals from the
printed amounts (``rules.totals``, only when the request read the whole document: the totals
rules hold for whole documents), seller and buyer the right way round by the first page's labels,
a value replaced by the one its label points at (``rules.labels``), the currency the pages print
(``rules.currency``).
Dates are read in the order (and the language) the page's evidence proves first (``rules.dates``),
so that the ``order`` rule judges the right dates, and again after the labels, which read a date as
the parser does.  What the pages cannot settle (a shared currency sign, a date's order, seller and
buyer one name, a label or a number read as a name, two labelled numbers, a row's text cut at a
line break or holding its own amounts, a VAT id printed that no party holds, a postcode read as a
VAT id, a VAT id's line read as an address) is returned as a doubt with its reason.
Rows come first: the totals' repairs suspect rows that break their ``product`` rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pipeline.ground.index import PageIndex
from pipeline.rules.currency import repair_currency
from pipeline.rules.dates import repair_date_order
from pipeline.rules.evidence import Doubt, countries, vat_doubts
from pipeline.rules.labels import read_labels
from pipeline.rules.order import repair_order
from pipeline.rules.products import repair_rows, row_doubts, row_totals
from pipeline.rules.totals import repair_totals

Record = dict[str, Any]


Printed = dict[str, list[float]]  # what pages print that the totals' repair chooses from (see printed_facts)


def printed_facts(pages: Sequence[PageIndex]) -> Printed:
    """The amounts, percentages and amounts printed as a row's on ``pages``: kept with each page's
    result, so the document's repair (``merge.assemble``) has what the page's had."""
    return {"amounts": sorted({a for p in pages for a, _ in p.amounts}),
            "rates": sorted({r for p in pages for r in p.rates}),
            "row_totals": sorted(row_totals([line for p in pages for line in p.line_amounts]))}


def joined(facts: Sequence[Printed]) -> Printed:
    """Several requests' printed facts as one document's."""
    return {key: sorted({v for f in facts for v in f.get(key) or []}) for key in ("amounts", "rates", "row_totals")}


def totals_repair(rules: list[dict[str, Any]], printed: Printed) -> Callable[[Record], tuple[Record, list[str]]]:
    """``rules.totals`` with what the pages print: amounts, rates, the amounts printed as a row's.
    The one way the totals are repaired, for a page's request and for a whole document."""
    return lambda record: repair_totals(record, rules, printed["amounts"], printed["rates"], printed["row_totals"])


def repair_record(record: Record, schema: dict[str, Any], rules: list[dict[str, Any]], pages: Sequence[PageIndex],
               page_number: int, totals: Callable[[Record], tuple[Record, list[str]]] | None
               ) -> tuple[Record, list[str], list[Doubt]]:
    """``record`` repaired from ``pages`` (the pages the request read, from ``page_number`` on;
    ``totals``: their ``totals_repair`` where they are the whole document, else None), the notes
    of what changed, and the fields the pages leave in doubt (path, why)."""
    notes: list[str] = []
    if not any(p.words for p in pages):
        return record, notes, []
    proven = countries(pages)
    record, fixed, doubts = repair_rows(record, rules, pages, schema)
    notes += fixed
    record, fixed, early = repair_date_order(record, schema, pages, proven)
    notes += fixed
    record, fixed = repair_order(record, rules, [d for p in pages for d in p.printed_dates])
    notes += fixed
    if totals is not None:
        record, fixed = totals(record)
        notes += fixed
    record, fixed, unsure = read_labels(record, schema, pages, page_number)
    notes += fixed
    doubts += unsure
    # a labelled date is read as the parser reads it ("listopada" in Polish): the evidence again; a
    # date in doubt that the order rule then dropped stays in doubt
    record, fixed, unsure = repair_date_order(record, schema, pages, proven)
    notes += fixed
    doubts += unsure + [(path, why) for path, why in early if record.get(path) is None]
    record, changed, unsure = repair_currency(record, schema, pages, proven)
    doubts += unsure + row_doubts(record, rules, pages)
    return record, notes + changed, doubts + vat_doubts(record, schema, pages)
