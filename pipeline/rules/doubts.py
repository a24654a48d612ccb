"""Settling a page's answer beside its words: repair what the rules prove, then find what is in doubt.

Decided once, in the worker, where the page's words are at hand.  First, where the vote of several
samples broke a rule that one sample keeps, the rule's fields are taken from that sample
(``rules.cohere``).  Then the record is repaired
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
from pipeline.rules.cohere import Cohered, cohere
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
    confidence: dict[str, float]  # the samples' agreement on the record's values (rules.cohere may move it)
    cohered: Cohered | None = None  # where the rules' fields were taken from one sample
    field_sources: dict[str, FieldSource] = field(default_factory=dict)
    ungrounded_fields: list[str] = field(default_factory=list)
    open_fields: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    pages: list[PageIndex] = field(default_factory=list)  # the pages read, indexed once (reused for the API's record)


def settle_page(record: dict[str, Any] | None, confidence: dict[str, float], schema: dict[str, Any],
                rules: list[dict[str, Any]], words: Sequence[Sequence[Word]], page_number: int,
                page_count: int | None, samples: Sequence[dict[str, Any]] = (), below: float = 1.0) -> Settled:
    """``words``: of each page the request read, from ``page_number`` on; ``samples``: the valid
    samples ``record`` was voted from; ``below``: a field agreed on by a smaller share is in doubt."""
    pages = [PageIndex.build(w) for w in words]
    pages_read = max(1, len(words))
    covers = covers_document(page_number, page_count, pages_read)
    whole = covers and any(p.words for p in pages)  # the totals can be repaired from the page's amounts
    amounts = [a for p in pages for a, _ in p.amounts]
    repairs: list[str] = []
    cohered = None
    if record is not None and len(samples) > 1:
        taken = cohere(record, confidence, list(samples), schema, rules,
                       lambda r: repair(r, rules, amounts)[0] if whole else r, covers)
        if taken.note:
            record, confidence, cohered = taken.record, taken.confidence, taken
            repairs.append(taken.note)
    if record is not None and whole:
        record, fixed = repair(record, rules, amounts)
        repairs += fixed
    if record is not None and page_number == 1 and pages and pages[0].words:  # the parties are on page 1
        record, swapped = settle_parties(record, schema, pages[0])
        repairs += [swapped] if swapped else []
    if record is not None and any(p.words for p in pages):
        record, changed = settle_currency(record, schema, pages)
        repairs += changed
    sources = ground(record, schema, pages, page_number)
    missing = ungrounded(sources)
    return Settled(record, confidence, cohered, sources, missing,
                   open_disputes(confidence, schema, page_number, page_count, missing, pages_read, below), repairs,
                   pages)
