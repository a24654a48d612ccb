"""A row's factor taken from its own printed line where the row's ``product`` rule fails.

A small model reading a table row takes a number from the wrong column or the wrong line: the
gross unit price printed under the net one, the quantity as the price ("10 x 1.000,00"), a price
quoted per 1,000 written as the amount.  The row's line on the page holds the right number: a
table row is one visual line, and the row's amount and its other factors are printed on it.  So
where a row breaks a ``product`` rule (quantity x unit price = amount), one factor is replaced
by a number printed on a line that also prints the row's amount and its other factors, if that
number, and only that one, makes the row hold.  A row that holds only by a price per 10, 100 or
1,000 units (the rule's ``per``) is read as failing where its line prints a factor with which it
holds per one unit ("800 x 0.025 = 20.00" read as a price of 25).  The amount itself is never
the replacement, nor 1 (a price equal to the amount proves nothing: every row prints its amount
and a position 1), and the amount never changes (the ``sum`` rule checks it against the totals).
Every change is recorded.  A row's text that cannot be a whole description (cut at a line break,
or holding the row's own amounts) is a doubt (``row_doubts``): no number proves what it should be.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

from pipeline.consensus.tolerance import HALF_CENT
from pipeline.ground.index import PageIndex
from pipeline.rules.checks import as_number, evaluate_rule
from pipeline.rules.columns import repair_columns
from pipeline.rules.rowtext import CUT, apart_from_amount, join_broken_words

CENT = HALF_CENT


def repair_rows(record: dict[str, Any], rules: list[dict[str, Any]], pages: Sequence[PageIndex],
                schema: dict[str, Any]) -> tuple[dict[str, Any], list[str], list[tuple[str, str]]]:
    """The rows' repairs, first of all (the totals' repairs suspect rows that break their rule):
    factors from their printed lines, texts from their own column (``rules.columns``, with the
    doubts it leaves), then words the page broke at a hyphen (``rules.rowtext``)."""
    record, notes = repair_products(record, rules, [line for p in pages for line in p.line_amounts])
    record, moved, doubts = repair_columns(record, rules, pages, schema)
    record, joined = join_broken_words(record, rules, pages)
    return record, notes + moved + joined, doubts


def repair_products(record: dict[str, Any], rules: list[dict[str, Any]],
                    lines: Sequence[Collection[float]]) -> tuple[dict[str, Any], list[str]]:
    """``record`` with the factors of failing rows taken from their printed lines, and the notes.

    ``lines``: the amounts printed on each visual line of the pages the record was read from."""
    notes: list[str] = []
    for rule in rules:
        rows = record.get(rule["items"]) if rule.get("kind") == "product" else None
        if not isinstance(rows, list) or not isinstance(rule.get("fields"), list):
            continue
        fixed = list(rows)
        plain = {**rule, "per": [1]}
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or evaluate_rule(plain, {rule["items"]: [row]}) is not False:
                continue
            # a row that holds only with a price per 10, 100 or 1,000 keeps it unless its line
            # prints a factor with which it holds per one
            holds = evaluate_rule(rule, {rule["items"]: [row]}) is True
            found = _candidates(row, plain if holds else rule, lines)
            if len(found) == 1:
                name, value = found[0]
                fixed[i] = {**row, name: value}
                notes.append(f"{rule['items']}[{i}].{name}: {row[name]} -> {value} "
                             f"(the row's printed line; {rule['name']})")
        record = {**record, rule["items"]: fixed}
    return record, notes


def row_doubts(record: dict[str, Any], rules: list[dict[str, Any]],
               pages: Sequence[PageIndex] = ()) -> list[tuple[str, str]]:
    """A row's text that is no whole description: cut where the page broke its line ("Kfz-"),
    holding the row's own amounts (the model read the row's columns into it: "4- 8,41 1 Stk 7 %
    8,41"), or printed away from the row's amount on ``pages`` (``rules.rowtext``).  Such text is
    printed, so grounding finds it and every sample may agree on it.  And a row whose every factor
    is 0 ("1 Stk" at 0,00 read as quantity 0): its ``product`` rule holds whatever was misread."""
    doubts = []
    for rule in rules:
        rows = record.get(rule["items"]) if rule.get("kind") == "product" else None
        if not isinstance(rows, list) or not isinstance(rule.get("fields"), list):
            continue
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                continue
            numbers = {round(n, 2) for f in rule["fields"] if (n := as_number(row.get(f))) is not None and n}
            if all(as_number(row.get(f)) == 0 for f in rule["fields"]):  # 0 x 0 holds for any misread
                doubts += [(f"{rule['items']}[{i}].{f}", "every factor of the row is 0") for f in rule["fields"]]
            for key, text in row.items():
                if not isinstance(text, str):
                    continue
                if CUT.search(text.strip()):
                    doubts.append((f"{rule['items']}[{i}].{key}", f"{text!r} is cut at a line break"))
                elif numbers & {round(abs(n), 2) for n in _cents(text)}:
                    doubts.append((f"{rule['items']}[{i}].{key}", f"{text!r} holds the row's own amounts"))
                elif apart_from_amount(text, as_number(row.get(rule["equals"])), pages):
                    doubts.append((f"{rule['items']}[{i}].{key}", f"{text!r} is printed away from the row's amount"))
    return doubts


def _cents(text: str) -> list[float]:
    """The amounts with cents written in ``text`` ("8,41", "1.234,50", "12.00")."""
    out = []
    for match in re.finditer(r"(?<![\d.,])\d{1,3}(?:[.,' ]?\d{3})*[.,]\d{2}(?![\d.,])", text):
        digits = re.sub(r"[^\d]", "", match.group())
        out.append(int(digits) / 100)
    return out


def row_totals(lines: Sequence[Collection[float]]) -> set[float]:
    """The amounts printed as a row's: on a line with two other numbers (not 1) whose product
    they are ("Cloud-Hosting  12  145,63  1.747,56").  A row the model left out is such an
    amount; it is no document allowance or charge (``rules.totals``)."""
    found = set()
    for line in lines:
        factors = [a for a in line if a and not _near(a, 1.0)]
        for amount in factors:
            others = [f for f in factors if not _near(f, amount)]
            if any(_near(x * y, amount) for i, x in enumerate(others) for y in others[i + 1:]):
                found.add(round(amount, 2))
    return found


def _candidates(row: dict[str, Any], rule: dict[str, Any],
                lines: Sequence[Collection[float]]) -> list[tuple[str, float]]:
    """Each (factor, value) that makes the row hold, from a line printing the row's other numbers."""
    target = as_number(row.get(rule["equals"]))
    factors = {name: as_number(row.get(name)) for name in rule["fields"]}
    if not target or any(v is None for v in factors.values()):
        return []
    found: set[tuple[str, float]] = set()
    for name, value in factors.items():
        others = [abs(v) for n, v in factors.items() if n != name and v is not None]
        known = [abs(target), *others]
        sign = -1.0 if value is not None and value < 0 else 1.0
        for line in lines:
            if not all(_printed(v, line) for v in known):
                continue
            for amount in line:
                if not amount or _near(amount, 1.0) or _near(amount, abs(target)) or \
                        (value is not None and _near(amount, abs(value))):
                    continue
                candidate = {**row, name: sign * amount}
                if evaluate_rule(rule, {rule["items"]: [candidate]}) is True:
                    found.add((name, round(sign * amount, 4)))  # "100,0000" and "100,0000 10" are one price
    return sorted(found)


def _printed(value: float, line: Collection[float]) -> bool:
    return any(_near(value, a) for a in line)


def _near(a: float, b: float) -> bool:
    return abs(a - b) < CENT
