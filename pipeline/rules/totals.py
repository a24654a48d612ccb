"""Rule-driven repair: when the totals do not add up, find the page's own amounts that make them.

A small model reads the right table and takes the wrong number from it: the first of several
subtotals as the net, the gross as the net, the tax rate's base as the tax.  The page prints the
right number, and the schema's rules (``x-rules``) say how the totals relate.  So where an
``add`` rule fails (net + tax = total), each field of the rule in turn is replaced by each amount
printed on the page; a replacement is taken only if exactly one makes the rule hold (ties are
broken by the ``sum`` rule over the rows: the repair that also makes the rows add up wins; then
by exactness: a sum to the cent beats one within the rule's rounding tolerance).  An empty field
of an ``add`` rule that the others fix is filled where the page prints that amount (a
tax-exempt invoice's 0,00 tax).  Then, with the totals proven consistent, trailing rows that
restate one of them ("Subtotal", "VAT", "Total" read as rows) are dropped, then rows that are not
goods, then the one row that is exactly the excess of the rows over the totals; last, the
document's allowances and charges are kept only where the rows need them, and where the rows
need one the model left out and the page prints it, it is filled in.  Every change is recorded
(``repairs``), so it is visible, never silent; a document whose rules still fail stays flagged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any

from pipeline.consensus.tolerance import HALF_CENT, RULE_TOLERANCE
from pipeline.rules.checks import (
    adjusting_fields,
    adjustment,
    as_number,
    evaluate_rule,
    field_names,
    restated_from,
    restates,
    total_fields,
)


def repair_totals(record: dict[str, Any], rules: list[dict[str, Any]], page_amounts: Iterable[float],
           rates: Iterable[float] = (), row_totals: Iterable[float] = ()) -> tuple[dict[str, Any], list[str]]:
    """``record`` repaired by the rules and the amounts printed on its pages, and what was changed;
    ``rates``: the percentages the pages print (for an ``add`` rule's ``rate`` field);
    ``row_totals``: amounts printed as a row's (``rules.products.row_totals``)."""
    printed = [round(abs(a), 2) for a in page_amounts]
    amounts = sorted({a for a in printed if a})
    as_rows = {round(abs(a), 2) for a in row_totals}
    notes: list[str] = []
    for rule in rules:
        if rule.get("kind") == "add" and evaluate_rule(rule, record) is None:
            record, note = _complete_add(record, rule, set(printed))
            notes += [note] if note else []
    for rule in rules:
        if rule.get("kind") == "add" and evaluate_rule(rule, record) is False:
            record, note = _repair_add(record, rule, rules, amounts, sorted(set(rates)))
            notes += [note] if note else []
    for rule in rules:
        if rule.get("kind") == "sum" and evaluate_rule(rule, record) is False:
            record, note = _drop_restating_rows(record, rule, rules)
            notes += [note] if note else []
        if rule.get("kind") == "sum" and evaluate_rule(rule, record) is False:
            record, note = _drop_rows_to_sum(record, rule, rules)
            notes += [note] if note else []
        if rule.get("kind") == "sum" and evaluate_rule(rule, record) is False:
            record, note = _drop_the_excess_row(record, rule, rules)
            notes += [note] if note else []
        if rule.get("kind") == "sum" and evaluate_rule(rule, record) is False:
            record, note = _find_adjustments(record, rule, rules, [a for a in amounts if a not in as_rows])
            notes += [note] if note else []
        if rule.get("kind") == "sum":
            record, note = _drop_adjustments(record, rule, rules)
            notes += [note] if note else []
    return record, notes


def _repair_add(record: dict[str, Any], rule: dict[str, Any], rules: list[dict[str, Any]],
                amounts: list[float], rates: Sequence[float] = ()) -> tuple[dict[str, Any], str | None]:
    names = [*field_names(rule["fields"]), *field_names(rule["equals"])]
    found: list[tuple[str, float, dict[str, Any]]] = []
    # an amount within the rounding tolerance of zero repairs nothing: the rule holds without the field
    amounts = [a for a in amounts if a > float(rule.get("tolerance", RULE_TOLERANCE))]
    for name in names:
        value = record.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        sign = -1.0 if value < 0 else 1.0
        for amount in amounts:
            if abs(amount - abs(value)) < HALF_CENT:
                continue
            candidate = {**record, name: sign * amount}
            if evaluate_rule(rule, candidate) is True:
                found.append((name, sign * amount, candidate))
    if rule.get("rate") and rates:  # a tax at none of the printed rates is no tax (the change handed back)
        at_rate = [f for f in found if _at_a_rate(f[2], rule, rates)]
        if not at_rate and not _at_a_rate(record, rule, rates):
            whole = _rated_repair(record, rule, amounts, rates)
            if whole is not None:
                return whole
        found = at_rate or found
    if len(found) > 1:  # the rows decide between repairs that each make the totals add up
        sums = [r for r in rules if r.get("kind") == "sum"]
        found = [f for f in found if any(evaluate_rule(s, f[2]) is True for s in sums)] or found
    if len(found) > 1:  # then a repair that adds up to the cent beats one within the rule's tolerance
        exact = {**rule, "tolerance": HALF_CENT}
        found = [f for f in found if evaluate_rule(exact, f[2]) is True] or found
    if len(found) != 1:
        return record, None
    name, value, repaired = found[0]
    return repaired, f"{name}: {record[name]} -> {value} ({rule['name']})"


def _complete_add(record: dict[str, Any], rule: dict[str, Any],
                  printed: set[float]) -> tuple[dict[str, Any], str | None]:
    """The one empty field of an ``add`` rule, where the others fix it and the page prints it: a
    tax-exempt invoice's tax, read past as nothing where the page prints "0,00" and the net is the
    total."""
    names = [*field_names(rule["fields"]), *field_names(rule["equals"])]
    values = {n: as_number(record.get(n)) for n in names}
    empty = [n for n, v in values.items() if v is None]
    if len(empty) != 1 or len(field_names(rule["equals"])) != 1:
        return record, None
    name, total = empty[0], field_names(rule["equals"])[0]
    parts = sum(v for n, v in values.items() if v is not None and n != total)
    value = round(parts if name == total else (values[total] or 0.0) - parts, 2)
    if abs(value) < HALF_CENT:
        value = 0.0
    if round(abs(value), 2) not in printed:
        return record, None
    return {**record, name: value}, f"{name}: None -> {value} ({rule['name']}: the other fields make it, " \
                                    "and the page prints it)"


def _at_a_rate(record: dict[str, Any], rule: dict[str, Any], rates: Sequence[float]) -> bool:
    """Whether the rule's ``rate`` field is one of the printed percentages of its other fields (to
    the cent, give or take a rounding each side)."""
    rated = rule["rate"]
    value = as_number(record.get(rated))
    base = [as_number(record.get(n)) for n in field_names(rule["fields"]) if n != rated]
    if value is None or None in base:
        return False
    of = abs(sum(b for b in base if b is not None))
    return any(abs(abs(value) - of * rate / 100) <= 0.015 for rate in rates)


def _rated_repair(record: dict[str, Any], rule: dict[str, Any], amounts: list[float],
                  rates: Sequence[float]) -> tuple[dict[str, Any], str] | None:
    """All of a two-field ``add`` rule's fields from the page, where exactly one printed triple adds
    up to the cent with its ``rate`` field at a printed rate.  A receipt's model reads the cash
    handed over as the total; the one repair of one field then makes the change the tax, at no
    rate the receipt prints; the net, tax and total it does print say otherwise."""
    names, totals = field_names(rule["fields"]), field_names(rule["equals"])
    if len(names) != 2 or len(totals) != 1 or any(as_number(record.get(n)) is None for n in [*names, *totals]):
        return None
    rated, other = rule["rate"], next(n for n in names if n != rule["rate"])
    printed = set(amounts)
    floor = float(rule.get("tolerance", RULE_TOLERANCE))
    found = [{other: round(t - x, 2), rated: x, totals[0]: t} for t in amounts for x in amounts
             if floor < x < t and round(t - x, 2) in printed]
    found = [f for f in found if _at_a_rate(f, rule, rates)]
    if len(found) != 1:
        return None
    sign = -1.0 if (as_number(record.get(totals[0])) or 0.0) < 0 else 1.0
    values = {n: sign * v for n, v in found[0].items()}
    changed = [n for n in [*names, *totals] if abs(abs(record[n]) - abs(values[n])) >= HALF_CENT]
    note = "; ".join(f"{n}: {record[n]} -> {values[n]}" for n in changed)
    return {**record, **values}, f"{note} ({rule['name']}: the one printed set at a printed rate)"


def _drop_restating_rows(record: dict[str, Any], rule: dict[str, Any],
                         rules: list[dict[str, Any]]) -> tuple[dict[str, Any], str | None]:
    """Trailing rows that each equal one of the totals, once the ``add`` rules hold (the totals are
    consistent, so rows equal to them restate them); at least one row stays."""
    adds = [r for r in rules if r.get("kind") == "add"]
    if not adds or any(evaluate_rule(r, record) is not True for r in adds):
        return record, None
    totals = [v for r in adds for n in [*field_names(r["fields"]), *field_names(r["equals"])]
              if (v := as_number(record.get(n)))]
    rows = record.get(rule["items"])
    if not isinstance(rows, list):
        return record, None
    cut = restated_from(rows, rule["field"], totals)
    if cut == len(rows):
        return record, None
    return {**record, rule["items"]: rows[:cut]}, f"{rule['items']}: {len(rows) - cut} trailing rows restate the totals"


MAX_SUSPECTS = 12  # rows that may be dropped to make the sum hold: 2^12 subsets at most


def _drop_rows_to_sum(record: dict[str, Any], rule: dict[str, Any],
                      rules: list[dict[str, Any]]) -> tuple[dict[str, Any], str | None]:
    """Rows that are not goods (a payment line, a tax line, a restated subtotal) dropped where
    that, and only that, makes the rows add up to a consistent total.

    Only suspect rows may go: rows that break a ``product`` rule of the same array (quantity x
    price is not the amount), rows that restate a total, and rows of zero.  The smallest set of
    suspects whose removal makes the ``sum`` rule hold is dropped if it is the only smallest set
    (by amounts); zero rows among the suspects go with it.  Totals that do not add up prove
    nothing, so nothing is dropped then.
    """
    adds = [r for r in rules if r.get("kind") == "add"]
    if any(evaluate_rule(r, record) is False for r in adds):
        return record, None
    items, field = rule["items"], rule["field"]
    rows = record.get(items)
    if not isinstance(rows, list) or len(rows) < 2:
        return record, None
    totals = [abs(v) for n in [*field_names(rule["equals"]), *adjusting_fields(rule)]
              if isinstance(v := record.get(n), (int, float)) and v]
    products = [r for r in rules if r.get("kind") == "product" and r.get("items") == items]
    suspects = [i for i, row in enumerate(rows) if isinstance(row, dict) and (
        restates(row.get(field), totals) or row.get(field) == 0 or
        any(evaluate_rule(p, {items: [row]}) is False for p in products))]
    if not suspects or len(suspects) > MAX_SUSPECTS or len(suspects) == len(rows):
        return record, None
    zeros = {i for i in suspects if rows[i].get(field) == 0}
    movable = [i for i in suspects if i not in zeros]
    for size in range(1, len(movable) + 1):
        fits = {}
        for drop in combinations(movable, size):
            kept = [row for i, row in enumerate(rows) if i not in drop and i not in zeros]
            if kept and evaluate_rule(rule, {**record, items: kept}) is True:
                fits[tuple(sorted(rows[i].get(field) for i in drop))] = kept
        if len(fits) > 1:
            return record, None  # two different sets of rows would do: nothing proves which
        if fits:
            kept = next(iter(fits.values()))
            return {**record, items: kept}, f"{items}: {len(rows) - len(kept)} rows that are not goods dropped " \
                                             f"({rule['name']} holds without them)"
    return record, None


def _drop_the_excess_row(record: dict[str, Any], rule: dict[str, Any],
                         rules: list[dict[str, Any]]) -> tuple[dict[str, Any], str | None]:
    """The one row whose amount is exactly what the rows add up to beyond a consistent total.

    A gross price, a deposit or a note printed under a row is read as one more row; it breaks
    no product and restates no total, so ``_drop_rows_to_sum`` cannot suspect it.  Where the
    totals agree with each other (the ``add`` rules hold) and exactly one row equals the excess of
    the rows over a total, that row goes; two candidates, or none, prove nothing.
    """
    adds = [r for r in rules if r.get("kind") == "add"]
    if not adds or any(evaluate_rule(r, record) is not True for r in adds):
        return record, None
    items, field = rule["items"], rule["field"]
    rows = record.get(items)
    if not isinstance(rows, list) or len(rows) < 3:
        return record, None
    amounts = [as_number(row.get(field)) if isinstance(row, dict) else None for row in rows]
    if any(a is None for a in amounts):
        return record, None
    total = sum(a for a in amounts if a is not None)
    total += adjustment(rule, record, total)
    targets = [t for t in (as_number(record.get(n)) for n in field_names(rule["equals"])) if t is not None]
    found = {i for t in targets for i, a in enumerate(amounts) if a and abs(a - (total - t)) < HALF_CENT}
    if len(found) != 1:
        return record, None
    index = found.pop()
    kept = rows[:index] + rows[index + 1:]
    if evaluate_rule(rule, {**record, items: kept}) is not True:
        return record, None
    return {**record, items: kept}, f"{items}: row {index + 1} ({amounts[index]}) dropped, the rows' excess over " \
                                    f"the totals ({rule['name']} holds without it)"


def _find_adjustments(record: dict[str, Any], rule: dict[str, Any], rules: list[dict[str, Any]],
                      amounts: list[float]) -> tuple[dict[str, Any], str | None]:
    """The allowance and charge a model left out, where the page prints them and they make the rows
    add up to a consistent total to the cent: one amount in one field if exactly one does, else one
    allowance and one charge if exactly one pair does.  The discount and the freight printed
    under the rows are read past more often than not; the totals already include them.  An amount
    that equals a row or a total is none of them, nor one printed as a row's (a row left out)."""
    adjusting, minus, plus = adjusting_fields(rule), rule.get("minus", []), rule.get("plus", [])
    rows = record.get(rule["items"])
    adds = [r for r in rules if r.get("kind") == "add"]
    values = [as_number(r.get(rule["field"])) if isinstance(r, dict) else None for r in rows] \
        if isinstance(rows, list) else []
    if not adjusting or any(as_number(record.get(n)) for n in adjusting) or not values or None in values or \
            any(evaluate_rule(r, record) is False for r in adds):
        return record, None
    rows_total = sum(v for v in values if v is not None)
    targets = [t for t in (as_number(record.get(n)) for n in field_names(rule["equals"])) if t is not None]
    known = [abs(v) for v in values if v]
    known += [abs(v) for n in total_fields(rules, rule) if (v := as_number(record.get(n)))]
    candidates = [a for a in amounts if a > float(rule.get("tolerance", RULE_TOLERANCE)) and not restates(a, known)]
    sign = -1.0 if rows_total < 0 else 1.0

    def exact(fields: dict[str, float]) -> bool:
        total = rows_total + adjustment(rule, {**record, **fields}, rows_total)
        return any(abs(total - t) < HALF_CENT for t in targets)

    found = [{n: sign * a} for n in adjusting for a in candidates if exact({n: a})] or \
        [{m: sign * a, p: sign * c} for m in minus for p in plus for a in candidates for c in candidates
         if a != c and exact({m: a, p: c})]
    if len(found) != 1:
        return record, None
    return {**record, **found[0]}, "; ".join(f"{n}: None -> {v} ({rule['name']}: the page prints it and the rows "
                                             f"add up with it)" for n, v in found[0].items())


def _drop_adjustments(record: dict[str, Any], rule: dict[str, Any],
                      rules: list[dict[str, Any]]) -> tuple[dict[str, Any], str | None]:
    """A ``sum`` rule's allowances and charges (``plus``, ``minus``) are kept only where the rows
    prove them: the rule holds with them and not without.  Asked for a document discount, a small
    model fills the field anyway: the net or the tax one field early, or one amount as discount and
    charge, which cancel.  Unless proved, one that equals a total is that total copied and goes
    first; of the rest, where the rule fails, the fewest whose removal makes it hold go (if only one
    such choice exists), and otherwise (the rule holds without them, or fails whatever is removed)
    all go.  Rows are judged before (``_drop_rows_to_sum``: a row that equals an allowance is the
    allowance read twice).  A rule that cannot be checked (no rows, no totals) leaves them as read."""
    adjusting = adjusting_fields(rule)
    present = [n for n in adjusting if as_number(record.get(n))]
    verdict = evaluate_rule(rule, record)
    if not present or verdict is None or \
            (verdict is True and evaluate_rule(rule, {**record, **dict.fromkeys(present)}) is False):
        return record, None  # nothing to judge, or proved: the rows need them, whatever they equal
    totals = [abs(v) for n in total_fields(rules, rule) if n not in adjusting and (v := as_number(record.get(n)))]
    copies = [n for n in present if restates(record[n], totals)]
    kept = {**record, **dict.fromkeys(copies)}
    notes = [f"{n}: {record[n]} -> None (restates a total)" for n in copies]
    rest = [n for n in present if n not in copies]
    verdict = evaluate_rule(rule, kept)
    if rest and not (verdict is True and evaluate_rule(rule, {**kept, **dict.fromkeys(rest)}) is False):
        drop = tuple(rest)
        for size in range(1, len(rest)) if verdict is False else ():
            fits = [d for d in combinations(rest, size) if evaluate_rule(rule, {**kept, **dict.fromkeys(d)}) is True]
            if fits:
                drop = fits[0] if len(fits) == 1 else drop
                break
        kept = {**kept, **dict.fromkeys(drop)}
        why = "holds without it" if evaluate_rule(rule, kept) is True else "does not prove it"
        notes += [f"{n}: {record[n]} -> None ({rule['name']} {why})" for n in drop]
    return kept, "; ".join(notes) or None
