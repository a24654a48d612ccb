"""Business rules that live with the schema (``"x-rules"``) and are reported by name.

A model can return JSON that validates and is still wrong: line amounts that do not add up,
a due date before the issue date.  Rules state such invariants declaratively next to the
schema; every document is checked, failures are listed by rule name (the ``rule_failures``
column), and later stages use them to decide which pages deserve a second opinion.  A rule
whose inputs are missing is skipped, not failed: absence is the validator's business.

Kinds:
  ``sum``      the ``field`` of every row of array ``items`` adds up to one of ``equals``, less the
             fields in ``minus`` and plus those in ``plus`` (optional; document-level
             allowances and charges, printed below the rows; null counts as none)
  ``add``      the ``fields`` add up to ``equals`` (``rate``: the field that is a printed
             percentage of the others, the tax of the net; used by ``rules.totals``)
  ``product``  in every row of ``items``, the product of ``fields`` equals ``equals``
  ``order``    the dates/numbers in ``fields`` are non-decreasing (``repair``: the field that
             yields when they are not, see ``rules.order``)
  ``in``       ``field`` is one of ``values``
Numeric comparisons allow ``tolerance`` (default 0.02, absolute).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from pipeline.consensus.tolerance import HALF_CENT, RULE_TOLERANCE, rows_slack
from pipeline.errors import SchemaError
from pipeline.schema.paths import steps

# Kinds that compare a document's rows with its totals: they hold for a whole document only,
# not for one page of a multi-page invoice (the others hold row by row or field by field).
WHOLE_DOCUMENT_KINDS = frozenset({"sum", "add"})
# error: a failure flags the document (needs_review) and sends the page to the adjudicator;
# warning: a failure is listed in rule_failures only (a check that legitimate documents break too)
SEVERITIES = ("error", "warning")
KINDS = {"sum": ("items", "field", "equals"), "add": ("fields", "equals"), "product": ("items", "fields", "equals"),
         "order": ("fields",), "in": ("field", "values")}


def check_rules(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema's rules, checked for shape at start-up."""
    rules = schema.get("x-rules", [])
    if not isinstance(rules, list):
        raise SchemaError("'x-rules' must be a list of rules")
    names = set()
    for rule in rules:
        if not isinstance(rule, dict) or rule.get("kind") not in KINDS or not rule.get("name"):
            raise SchemaError(f"invalid rule {rule!r}: needs a 'name' and a 'kind' in {sorted(KINDS)}")
        missing = [k for k in KINDS[rule["kind"]] if k not in rule]
        if missing:
            raise SchemaError(f"rule '{rule['name']}' ({rule['kind']}) lacks {', '.join(missing)}")
        if rule["name"] in names:
            raise SchemaError(f"rule name '{rule['name']}' is used twice")
        if rule.get("severity", "error") not in SEVERITIES:
            raise SchemaError(f"rule '{rule['name']}': severity must be one of {', '.join(SEVERITIES)}")
        per = rule.get("per", [1])
        if not isinstance(per, list) or not per or not all(isinstance(p, (int, float)) and p > 0 for p in per):
            raise SchemaError(f"rule '{rule['name']}': 'per' must be a list of positive numbers")
        for key in ("plus", "minus"):
            if key in rule and not (rule["kind"] == "sum" and isinstance(rule[key], list) and
                                    all(isinstance(n, str) for n in rule[key])):
                raise SchemaError(f"rule '{rule['name']}': '{key}' is a list of field names, on a sum rule only")
        if "rate" in rule and not (rule["kind"] == "add" and rule["rate"] in field_names(rule["fields"])):
            raise SchemaError(f"rule '{rule['name']}': 'rate' names one of its fields, on an add rule only")
        if "repair" in rule and not (rule["kind"] == "order" and rule["repair"] in rule["fields"]):
            raise SchemaError(f"rule '{rule['name']}': 'repair' names one of its fields, on an order rule only")
        names.add(rule["name"])
    return rules


def as_number(value: Any) -> float | None:
    """A JSON number as a float (a bool is not one), else None."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance + 1e-9  # in floats, 50.92 - 50.90 is a hair over 0.02


def _rows(record: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rows = record.get(key)
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _targets(record: dict[str, Any], equals: Any) -> list[float]:
    names = equals if isinstance(equals, list) else [equals]
    return [v for v in (as_number(record.get(n)) for n in names) if v is not None]


def evaluate_rule(rule: dict[str, Any], record: dict[str, Any]) -> bool | None:
    """True (holds), False (fails) or None (not applicable: inputs missing)."""
    tol = float(rule.get("tolerance", RULE_TOLERANCE))
    kind = rule["kind"]
    if kind == "sum":
        values = [as_number(r.get(rule["field"])) for r in _rows(record, rule["items"])]
        targets = _targets(record, rule["equals"])
        if not values or any(v is None for v in values) or not targets:
            return None
        total = sum(v for v in values if v is not None)
        total += adjustment(rule, record, total)
        return any(_close(total, t, rows_slack(len(values), tol)) for t in targets)
    if kind == "add":
        values = [as_number(record.get(f)) for f in rule["fields"]]
        targets = _targets(record, rule["equals"])
        if any(v is None for v in values) or not targets:
            return None
        return any(_close(sum(v for v in values if v is not None), t, tol) for t in targets)
    if kind == "product":
        verdicts = []
        for row in _rows(record, rule["items"]):
            factors = [as_number(row.get(f)) for f in rule["fields"]]
            target = as_number(row.get(rule["equals"]))
            if target is None or any(f is None for f in factors):
                continue
            product = 1.0
            for f in factors:
                product *= f  # type: ignore[operator]
            # "per": prices quoted per 10, 100 or 1000 units (an e-invoice's base quantity)
            verdicts.append(any(_close(product / per, target, tol) for per in rule.get("per", [1])))
        return all(verdicts) if verdicts else None
    if kind == "order":
        values = [record.get(f) for f in rule["fields"]]
        if any(v is None for v in values):
            return None
        keys: list[Any] = [date.fromisoformat(v) if isinstance(v, str) else v for v in values]
        return all(a <= b for a, b in zip(keys, keys[1:], strict=False))
    if kind == "in":
        value = record.get(rule["field"])
        return None if value is None else value in rule["values"]
    raise SchemaError(f"unknown rule kind {kind!r}")


def proven_by_sums(rules: list[dict[str, Any]], record: dict[str, Any]) -> set[str]:
    """The paths a ``sum`` rule that holds to the cent vouches for: how many rows there are and
    their amounts.  Rows that add up to the printed totals are stronger evidence than samples that
    agree; a sample that read a totals line as one more row, or left out a row of zero, is
    outvoted by the arithmetic."""
    out: set[str] = set()
    for rule in rules:
        if rule.get("kind") == "sum" and evaluate_rule({**rule, "tolerance": HALF_CENT}, record) is True:
            out |= {f"{rule['items']}.length"} | {f"{rule['items']}[{i}].{rule['field']}"
                                                  for i in range(len(_rows(record, rule["items"])))}
    return out


def adjusting_fields(rule: dict[str, Any]) -> list[str]:
    """A ``sum`` rule's allowance and charge fields (``minus``, then ``plus``); none for other kinds."""
    return [*rule.get("minus", []), *rule.get("plus", [])]


def adjustment(rule: dict[str, Any], record: dict[str, Any], rows_total: float) -> float:
    """What a ``sum`` rule adds to its rows' total before comparing: its ``plus`` fields less its
    ``minus`` fields, by size (a discount is printed "-5.00" as often as "5.00"), turned with the rows'
    sign (on a credit note the rows are negative, and so are its charges)."""
    plus = sum(abs(v) for n in rule.get("plus", []) if (v := as_number(record.get(n))) is not None)
    minus = sum(abs(v) for n in rule.get("minus", []) if (v := as_number(record.get(n))) is not None)
    return (plus - minus) * (-1.0 if rows_total < 0 else 1.0)


def in_writing_order(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with the totals that rules add up moved right after the rows they add up.

    A model writes its answer left to right.  Asked for the net amount before the line items,
    a small model copies the first amount it meets (the first line's), and the tax from the
    second line; asked after writing the rows out, it has just read past them to the totals, as
    on the page.  Which fields are totals comes from the rules: the targets of ``sum`` rules and
    every field of an ``add`` rule that involves one.  Only the answer's order changes; records,
    columns and validation keep the schema's.
    """
    props = schema.get("properties")
    rules = [r for r in schema.get("x-rules", []) if isinstance(r, dict)]
    arrays = [r["items"] for r in rules if r.get("kind") == "sum" and r.get("items") in (props or {})]
    if not isinstance(props, dict) or not arrays:
        return schema
    totals = {t for r in rules if r.get("kind") == "sum" for t in total_fields(rules, r)}
    totals = {t for t in totals if t in props and t not in arrays}
    last_array = max(list(props).index(a) for a in arrays)
    order = [k for i, k in enumerate(props) if i <= last_array and k not in totals]
    order += [k for k in props if k in totals] + [k for i, k in enumerate(props) if i > last_array and k not in totals]
    out = {**schema, "properties": {k: props[k] for k in order}}
    if isinstance(schema.get("required"), list):  # the model reads it too: the same order
        out["required"] = sorted(schema["required"], key=lambda k: order.index(k) if k in order else len(order))
    return out


def restated_adjustments(confidence: dict[str, float], record: dict[str, Any] | None,
                         samples: Sequence[dict[str, Any]], rules: list[dict[str, Any]]) -> dict[str, float]:
    """``confidence`` with no dispute over an allowance or a charge (a ``sum`` rule's adjusting
    field) that the record holds none of, where every sample that wrote one wrote an amount the
    record holds in another field (a row's amount, the tax): such a value restates a number, as the
    one the rules dropped did ("restates a total"), and is no reading of an allowance.  Probed on
    the world probes: five right documents were flagged only for such draws."""
    if record is None or not samples:
        return confidence
    held = {round(v, 2) for v in _numbers(record)}
    out = dict(confidence)
    for name in {n for rule in rules for n in adjusting_fields(rule)}:
        if out.get(name, 1.0) >= 1.0 or record.get(name) not in (None, ""):
            continue
        written = [as_number(s.get(name)) for s in samples if s.get(name) not in (None, "")]
        if written and all(v is not None and round(v, 2) in held for v in written):
            out[name] = 1.0
    return out


def on_held_rows(confidence: dict[str, float], record: dict[str, Any] | None) -> dict[str, float]:
    """``confidence`` without the values of rows the record no longer has: a dispute among the
    samples over a row the rules then dropped (a total restated as a row) is over nothing, and it
    flagged right records ("in doubt: line_items[2].quantity" of a record with two rows)."""
    if record is None:
        return confidence
    return {path: share for path, share in confidence.items() if _held(record, steps(path))}


def _held(value: Any, path: list[str | int]) -> bool:
    """Whether every row index on ``path`` is one the record has."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return False
            value = value[step]
        else:
            value = value.get(step) if isinstance(value, dict) else None
    return True


def _numbers(value: Any) -> list[float]:
    """Every number in a record, in its rows too."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    number = as_number(value)
    return [number] if number is not None and not isinstance(value, bool) else []


def drop_restated_totals(rules: list[dict[str, Any]], record: dict[str, Any]) -> dict[str, Any]:
    """The record without trailing rows that restate its totals ("Subtotal", "VAT", "Total due"
    read as line items), where the record itself proves that is what they are.

    Read from a text layout, the totals under a table look like more rows, and models copy
    them into the array.  Those rows break the sum, so the page would be sent for adjudication
    for a mistake the record can prove and undo.  Trailing rows are dropped only if the ``sum``
    rule fails with them and either (a) each equals one of the totals and without them the sum
    holds, or (b) the first of them equals the sum of the rows above it (the page's own subtotal)
    and the others, at least one, each equal one of the totals.  In case (b) the total fields
    may still be wrong; the rules go on saying so, and adjudication decides.
    """
    for rule in rules:
        if rule.get("kind") != "sum" or not isinstance(record.get(rule["items"]), list) or \
                evaluate_rule(rule, record) is not False:
            continue
        rows, field = record[rule["items"]], rule["field"]
        amounts = [as_number(r.get(field)) if isinstance(r, dict) else None for r in rows]
        cut = restated_from(rows, field, [v for n in total_fields(rules, rule) if (v := as_number(record.get(n)))])
        subtotal, above = amounts[cut - 1], amounts[:cut - 1]
        # (b) needs the total rows after it: a last line that merely equals the lines above it
        # (two lines of 500) is no proof, and on a page of a longer invoice the sum always fails
        if cut > 1 and cut < len(rows) and subtotal is not None and None not in above and \
                _close(subtotal, sum(a for a in above if a is not None), rows_slack(len(above))):
            cut -= 1  # (b): a printed subtotal of the rows above it
        elif cut == len(rows) or evaluate_rule(rule, {**record, rule["items"]: rows[:cut]}) is not True:
            continue  # neither (a) nor (b): nothing proved
        record = {**record, rule["items"]: rows[:cut]}
    return record


def restated_from(rows: list[Any], field: str, totals: list[float]) -> int:
    """Where the trailing rows whose ``field`` restates one of ``totals`` begin (``len(rows)``: none
    do); the first row always stays.  Both proofs that such rows are the page's totals read as
    rows (the sum holds without them, ``drop_restated_totals``; the totals agree with each other,
    ``rules.totals``) cut here."""
    cut = len(rows)
    while cut > 1 and isinstance(rows[cut - 1], dict) and restates(rows[cut - 1].get(field), totals):
        cut -= 1
    return cut


def restates(value: Any, totals: list[float]) -> bool:
    """Whether an amount is one of ``totals`` printed again (either sign: a credit note's rows are negative)."""
    number = as_number(value)
    return number is not None and any(abs(abs(number) - abs(t)) < HALF_CENT for t in totals)


def total_fields(rules: list[dict[str, Any]], rule: dict[str, Any]) -> set[str]:
    """The fields a sum rule's rows may be restating: its targets, its adjustments and the fields
    added to them."""
    names = _names(rule["equals"]) | set(adjusting_fields(rule))
    for other in rules:
        if other.get("kind") == "add" and (_names(other["fields"]) | _names(other["equals"])) & names:
            names |= _names(other["fields"]) | _names(other["equals"])
    return names


def field_names(value: Any) -> list[str]:
    """A rule's field reference (one name or a list of them) as a list, in the rule's order."""
    return list(value) if isinstance(value, list) else [value] if isinstance(value, str) else []


def _names(value: Any) -> set[str]:
    return set(field_names(value))


def scoped(rules: list[dict[str, Any]], whole_document: bool) -> list[dict[str, Any]]:
    """The rules that hold for what a request read: all of them for a whole document; for one page
    of a longer one, not those that compare rows with totals (the totals may be on another page)."""
    return rules if whole_document else [r for r in rules if r["kind"] not in WHOLE_DOCUMENT_KINDS]


def flagging(rules: list[dict[str, Any]], failures: list[str]) -> list[str]:
    """The failures that flag a document: those of ``rules`` whose severity is error (a rule not in
    ``rules`` does not hold for the document: ``rules.expected.kind_rules``)."""
    errors = {r["name"] for r in rules if r.get("severity") != "warning"}
    return [name for name in failures if name in errors]


def flagged_failures(rules: list[dict[str, Any]], record: dict[str, Any]) -> list[str]:
    """The rules ``record`` breaks that flag it (severity error)."""
    return flagging(rules, rule_failures(rules, record))


def rule_paths(rule: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """The values a rule reads in ``record`` (``line_items[2].amount``, ``net_amount``): where it fails,
    one of them is misread, so these are the values a vote can settle."""
    top = [n for key in ("equals", "minus", "plus") for n in field_names(rule.get(key))]
    own = field_names(rule.get("field")) + field_names(rule.get("fields"))
    if "items" not in rule:
        return own + top
    rows = [f"{rule['items']}[{n}].{name}" for n in range(len(_rows(record, rule["items"]))) for name in own]
    return rows + top


def rule_failures(rules: list[dict[str, Any]], record: dict[str, Any]) -> list[str]:
    """Names of the rules the record breaks."""
    failed = []
    for rule in rules:
        try:
            verdict = evaluate_rule(rule, record)
        except (TypeError, ValueError):
            verdict = False  # a value of the wrong shape breaks the rule
        if verdict is False:
            failed.append(rule["name"])
    return failed
