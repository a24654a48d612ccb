"""Settling a page's answer beside its words: repair what the rules prove, then find what is in doubt.

Decided once, in the worker, where the page's words are at hand.  First the record is repaired
where its totals do not add up and the page prints the amounts that make them
(``rules.repair``; only when the request read the whole document: the totals rules hold for
whole documents), and seller and buyer are put the right way round where the first page's
labels say so (``rules.parties``).  Then every value is looked up on the page (``ground``): a value printed
nowhere is in doubt even when the samples agree on it, since a small model agrees with itself
readily.  The doubtful fields that matter for the document (``merge.pages.open_disputes``) go to
the adjudicator or flag the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.ground.index import PageIndex
from pipeline.ground.sources import FieldSource, ground_pages, ungrounded
from pipeline.merge.pages import covers_document, open_disputes
from pipeline.render.textlayer import Word
from pipeline.rules.currency import settle_currency
from pipeline.rules.parties import settle_parties
from pipeline.rules.repair import repair


def ground(record: dict[str, Any] | None, schema: dict[str, Any], pages: Sequence[PageIndex],
           page_number: int) -> dict[str, FieldSource]:
    """``field_sources`` of a record in the pages a request read (none when they have no words)."""
    return ground_pages(record, schema, pages, page_number) if any(p.words for p in pages) else {}


@dataclass(frozen=True)
class Settled:
    record: dict[str, Any] | None
    field_sources: dict[str, FieldSource] = field(default_factory=dict)
    ungrounded_fields: list[str] = field(default_factory=list)
    open_fields: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    pages: list[PageIndex] = field(default_factory=list)  # the pages read, indexed once (reused for the API's record)


def settle_page(record: dict[str, Any] | None, confidence: dict[str, float], schema: dict[str, Any],
                rules: list[dict[str, Any]], words: Sequence[Sequence[Word]], page_number: int,
                page_count: int | None) -> Settled:
    """``words``: of each page the request read, from ``page_number`` on."""
    pages = [PageIndex.build(w) for w in words]
    pages_read = max(1, len(words))
    repairs: list[str] = []
    if record is not None and covers_document(page_number, page_count, pages_read) and any(p.words for p in pages):
        record, repairs = repair(record, rules, (a for p in pages for a, _ in p.amounts))
    if record is not None and page_number == 1 and pages and pages[0].words:  # the parties are on page 1
        record, swapped = settle_parties(record, schema, pages[0])
        repairs += [swapped] if swapped else []
    if record is not None and any(p.words for p in pages):
        record, changed = settle_currency(record, schema, pages)
        repairs += changed
    sources = ground(record, schema, pages, page_number)
    missing = ungrounded(sources)
    return Settled(record, sources, missing,
                   open_disputes(confidence, schema, page_number, page_count, missing, pages_read), repairs, pages)
