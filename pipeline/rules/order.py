"""A date that breaks an ``order`` rule, replaced by the page's own or dropped, where the schema
says which date yields.

A small model takes the wrong one of several printed dates: the end of the service period as the
due date, the order date as the delivery date.  Where the dates then run backwards (due before
issued), which of them is wrong is the schema author's knowledge, not the record's: an ``order``
rule may name the field that yields (``"repair": "due_date"``).  That field takes the one date
printed on the pages read that restores the order (not one of the rule's other dates: a due
date equal to the issue date proves nothing); with none or several, nothing proves which, and it
is dropped.  Either way the change is recorded, and the document no longer waits for a person
over a date the pages disprove.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.rules.checks import evaluate_rule


def repair_order(record: dict[str, Any], rules: list[dict[str, Any]],
                 printed: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """``record`` with each failing order rule's yielding date replaced or dropped; ``printed``:
    the dates (ISO) printed on the pages read, each reading of an ambiguous one."""
    dates = sorted(set(printed))
    notes: list[str] = []
    for rule in rules:
        name = rule.get("repair")
        if rule.get("kind") != "order" or not name or evaluate_rule(rule, record) is not False:
            continue
        others = {record.get(f) for f in rule["fields"] if f != name}
        fits = [d for d in dates if d not in others and evaluate_rule(rule, {**record, name: d}) is True]
        value = fits[0] if len(fits) == 1 else None
        why = "the one printed date that keeps the order" if value else \
            f"{len(fits) or 'no'} printed dates would keep the order"
        notes.append(f"{name}: {record[name]} -> {value} ({rule['name']}: {why})")
        record = {**record, name: value}
    return record, notes
