"""Settling a page's answer beside its words: repair what the rules prove, then find what is in doubt.

Decided once, in the worker, where the page's words are at hand.  First, where the vote of several
samples broke a rule that one sample keeps, the rule's fields are taken from that sample
(``rules.cohere``).  Then the record is repaired from the pages' words (``rules.repairs``: a row's
factor from its printed line, a date that breaks an ``order`` rule, the totals from the printed
amounts, seller and buyer, the currency).  Then every value is looked up on the page (``ground``):
a value printed nowhere is in doubt even when the samples agree on it, since a small model agrees
with itself readily; a date printed nowhere is the model's own and is dropped
(``ground.drop_unprinted``); a sample's value printed nowhere is no vote against a printed one
(``ground.votes``); and rows that add up to the totals to the cent settle a dispute over their
number and amounts (``checks.proven_by_sums``).  Some values are in doubt for a reason of their
own, kept beside the field: a currency or a date's order the pages do not settle, seller and
buyer one name (``rules.repairs``), a value the page's kind always has that is missing, or a value
normalising threw away (``rules.expected``).  The doubtful fields that matter for the document
(``schema.scope.open_disputes``; on a page of a kind the schema lists fields for, those fields
only) go to the adjudicator or flag the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.ground.index import PageIndex, Word
from pipeline.ground.sources import FieldSource, drop_unprinted, ground_pages, ungrounded
from pipeline.ground.votes import printed_agreement
from pipeline.rules.checks import (
    flagged_failures,
    on_held_rows,
    proven_by_sums,
    restated_adjustments,
    rule_paths,
    scoped,
)
from pipeline.rules.cohere import Cohered, cohere
from pipeline.rules.expected import absent, decisive, kind_fields, kind_rules
from pipeline.rules.repairs import Printed, printed_facts, repair_record, totals_repair
from pipeline.schema.scope import covers_document, open_disputes


def ground(record: dict[str, Any] | None, schema: dict[str, Any], pages: Sequence[PageIndex],
           page_number: int) -> dict[str, FieldSource]:
    """``field_sources`` of a record in the pages a request read (none when they have no words)."""
    return ground_pages(record, schema, pages, page_number) if any(p.words for p in pages) else {}


@dataclass(frozen=True)
class Settled:
    record: dict[str, Any] | None
    # the samples' agreement on the record's values (rules.cohere may move it; outside rows, counted
    # among the samples whose value is printed: ground.votes)
    confidence: dict[str, float]
    cohered: Cohered | None = None  # where the rules' fields were taken from one sample
    field_sources: dict[str, FieldSource] = field(default_factory=dict)
    ungrounded_fields: list[str] = field(default_factory=list)
    open_fields: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    doubts: list[str] = field(default_factory=list)  # "path: why" for each value in doubt for a reason of its own
    pages: list[PageIndex] = field(default_factory=list)  # the pages read, indexed once (reused for the API's record)
    whole: bool = False  # the pages read are the whole document: its sums and totals must hold on them

    @property
    def printed(self) -> Printed:
        """What the pages print for the totals' repair, kept for the document's (merge.assemble)."""
        return printed_facts(self.pages)


def settle_page(record: dict[str, Any] | None, confidence: dict[str, float], schema: dict[str, Any],
                rules: list[dict[str, Any]], words: Sequence[Sequence[Word]], page_number: int,
                page_count: int | None, samples: Sequence[dict[str, Any]] = (), below: float = 1.0,
                unreadable: Sequence[str] = (), kind: str | None = None) -> Settled:
    """``words``: of each page the request read, from ``page_number`` on; ``samples``: the valid
    samples ``record`` was voted from; ``below``: a field agreed on by a smaller share is in doubt;
    ``unreadable``: the fields a sample's value was thrown away from by normalising (a doubt where
    the record ends without a value); ``kind``: the page's kind, which says what it must have."""
    pages = [PageIndex.build(w) for w in words]
    pages_read = max(1, len(words))
    covers = covers_document(page_number, page_count, pages_read)
    whole = covers and any(p.words for p in pages)  # the totals can be repaired from the page's amounts
    repairs: list[str] = []
    cohered = None
    totals = totals_repair(rules, printed_facts(pages)) if whole and record is not None else None
    if record is not None and len(samples) > 1:
        taken = cohere(record, confidence, list(samples), schema, rules,
                       (lambda r: totals(r)[0]) if totals else lambda r: r, covers)
        if taken.note:
            record, confidence, cohered = taken.record, taken.confidence, taken
            repairs.append(taken.note)
    reasons: dict[str, str] = {}
    if record is not None:
        record, fixed, unsure = repair_record(record, schema, rules, pages, page_number, totals)
        repairs += fixed
        reasons.update(unsure)
    sources = ground(record, schema, pages, page_number)
    record, dropped = drop_unprinted(record, schema, sources)
    if dropped:
        sources = {path: source for path, source in sources.items() if path not in dropped}
        repairs += [f"{path}: printed nowhere on the page, dropped" for path in dropped]
    missing = ungrounded(sources)
    if record is not None:
        for path, why in absent(record, schema, kind, unreadable).items():
            reasons.setdefault(path, why)  # a reason of the page's own ('$' is five dollars) says more
    confidence = on_held_rows(restated_adjustments(printed_agreement(confidence, record, samples, schema, pages),
                                                   record, samples, rules), record)
    disputes = open_disputes(confidence, schema, page_number, page_count, [*missing, *reasons], pages_read, below)
    if record is not None and whole:  # rows that add up to the totals settle how many there are
        proven = proven_by_sums(rules, record)
        disputes = [p for p in disputes if p not in proven or p in missing or p in reasons]
    disputes = kind_fields(disputes, schema, kind)
    doubts = [f"{path}: {why}" for path, why in sorted(reasons.items()) if path in disputes]
    return Settled(record, confidence, cohered, sources, missing, disputes, repairs, doubts, pages, covers)


def unsettled(settled: Settled, rules: list[dict[str, Any]], schema: dict[str, Any], kind: str | None,
              certainty: dict[str, float], sure: float) -> tuple[str, list[str]] | None:
    """Why one answer does not settle a page (adaptive sampling), and the values a vote would settle;
    None when it does: every value that matters printed and not in doubt, no rule that flags broken, and
    no decisive value the model chose with a probability under ``sure`` (``certainty``: path -> the
    greedy answer's probability, ``model.certainty``).  A vote of more samples changes only what one
    answer leaves open; spent on a settled page it buys nothing."""
    if settled.record is None:
        return "no record", []
    why = [f"in doubt: {', '.join(settled.open_fields[:10])}"] if settled.open_fields else []
    unsure = {p: v for p, v in certainty.items() if v < sure and decisive(schema, p, kind)}
    if unsure:
        why.append("unsure: " + ", ".join(f"{p} ({v:.2f})" for p, v in sorted(unsure.items(), key=lambda i: i[1])[:5]))
    page_rules = kind_rules(scoped(rules, settled.whole), schema, kind)
    failed = flagged_failures(page_rules, settled.record)
    why += [f"rules: {', '.join(failed)}"] if failed else []
    broken = [path for rule in page_rules if rule["name"] in failed for path in rule_paths(rule, settled.record)]
    return ("; ".join(why), [*settled.open_fields, *unsure, *broken]) if why else None
