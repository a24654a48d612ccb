"""Keeping the totals of one sample together where the field-by-field vote broke them.

Consensus votes each field on its own (``consensus.vote``).  For fields the rules tie together
(the rows, the net, the tax and the total; the issue and due dates) that can mix samples: the net
of two samples and the total of two others, rows voted cell by cell, a sum that no sample wrote
and that no longer adds up although every sample's own reading did.  A broken rule flags the
document, so the vote turns samples that each made sense into a review.

Where the voted record breaks a rule that a sample's own values keep, the fields of the broken
rules are taken together from that sample (of several, the one most samples agree with; then the
earliest), each with the share of samples that agree with its value (``consensus.anchored``).
The change is recorded with the page's repairs.  Where no sample keeps the rules, the vote stays
and the rules go on failing: nothing is made up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.consensus.compare import agrees, child
from pipeline.consensus.vote import alternatives_text, anchored
from pipeline.rules.checks import field_names, flagged_failures, scoped, total_fields

Check = Callable[[dict[str, Any]], dict[str, Any]]  # a record as the rules will judge it (repaired where they can)


@dataclass(frozen=True)
class Cohered:
    record: dict[str, Any]
    confidence: dict[str, float]
    fields: list[str] = field(default_factory=list)  # the top-level fields taken from one sample
    alternatives: dict[str, list[Any]] = field(default_factory=dict)  # what the other samples read there
    note: str | None = None

    def covers(self, path: str) -> bool:
        """Whether a field path lies in the fields taken from the sample."""
        return _under(path, self.fields)

    def alternatives_over(self, previous: dict[str, list[str]]) -> dict[str, list[str]]:
        """The vote's ``field_alternatives`` (as text) with those of the fields taken from the sample
        replaced by what the other samples read there."""
        return {**{p: v for p, v in previous.items() if not self.covers(p)}, **alternatives_text(self.alternatives)}


def tied_fields(rules: list[dict[str, Any]], failed: list[str]) -> list[str]:
    """The top-level fields the failed rules read; for a ``sum``, its rows and every total tied to
    its targets by ``add`` rules (the net, the tax, the total)."""
    names: set[str] = set()
    for rule in rules:
        if rule["name"] not in failed:
            continue
        kind = rule["kind"]
        if kind == "sum":
            names |= {rule["items"], *total_fields(rules, rule)}
        elif kind == "add":
            names |= {*field_names(rule["fields"]), *field_names(rule["equals"])}
        elif kind == "product":
            names.add(rule["items"])
        else:
            names |= set(field_names(rule.get("fields") or rule.get("field")))
    return sorted(names)


def cohere(record: dict[str, Any], confidence: dict[str, float], samples: list[dict[str, Any]],
           schema: dict[str, Any], rules: list[dict[str, Any]], judged: Check, whole_document: bool = True) -> Cohered:
    """``record`` (the vote of ``samples``) with the fields of the rules it breaks taken from one
    sample whose own values keep them; ``whole_document``: whether the page's request read all of
    its document (else the rules that compare rows with totals wait for the document)."""
    rules = scoped(rules, whole_document)
    failed = flagged_failures(rules, judged(record))
    if not failed or len(samples) < 2:
        return Cohered(record, confidence)
    names = [n for n in tied_fields(rules, failed) if n in record]
    keeping = [i for i, sample in enumerate(samples)
               if not flagged_failures(rules, judged({**record, **{n: sample.get(n) for n in names}}))]
    if not keeping:
        return Cohered(record, confidence)

    def support(i: int) -> int:
        return sum(all(agrees(s.get(n), samples[i].get(n), child(schema, n, schema), schema) for n in names)
                   for s in samples)

    chosen = max(keeping, key=support)  # max keeps the earliest of equal support
    reading = anchored(samples, chosen, schema)
    note = f"{', '.join(names)} taken together from sample {chosen + 1} of {len(samples)}: the field-by-field " \
           f"vote broke {', '.join(failed)}, which that sample's own values keep"
    return Cohered({**record, **{n: reading.record.get(n) for n in names}},
                   {**{p: c for p, c in confidence.items() if not _under(p, names)},
                    **{p: c for p, c in reading.confidence.items() if _under(p, names)}},
                   names, {p: v for p, v in reading.alternatives.items() if _under(p, names)}, note)


def _under(path: str, names: list[str]) -> bool:
    return any(path == n or path.startswith((f"{n}.", f"{n}[")) for n in names)

