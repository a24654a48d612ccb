"""Business rules that live with the schema (``"x-rules"``) and are reported by name.

A model can return JSON that validates and is still wrong: line amounts that do not add up,
a due date before the issue date.  Rules state such invariants declaratively next to the
schema; every document is checked, failures are listed by rule name (the ``rule_failures``
column), and later stages use them to decide which pages deserve a second opinion.  A rule
whose inputs are missing is skipped, not failed: absence is the validator's business.

Kinds:
  ``sum``      the ``field`` of every row of array ``items`` adds up to one of ``equals``
  ``add``      the ``fields`` add up to ``equals``
  ``product``  in every row of ``items``, the product of ``fields`` equals ``equals``
  ``order``    the dates/numbers in ``fields`` are non-decreasing
  ``in``       ``field`` is one of ``values``
Numeric comparisons allow ``tolerance`` (default 0.02, absolute).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pipeline.errors import SchemaError

# Kinds that compare a document's rows with its totals: they hold for a whole document only,
# not for one page of a multi-page invoice (the others hold row by row or field by field).
WHOLE_DOCUMENT_KINDS = frozenset({"sum", "add"})
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
        names.add(rule["name"])
    return rules


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance


def _rows(record: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rows = record.get(key)
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _targets(record: dict[str, Any], equals: Any) -> list[float]:
    names = equals if isinstance(equals, list) else [equals]
    return [v for v in (_num(record.get(n)) for n in names) if v is not None]


def evaluate_rule(rule: dict[str, Any], record: dict[str, Any]) -> bool | None:
    """True (holds), False (fails) or None (not applicable: inputs missing)."""
    tol = float(rule.get("tolerance", 0.02))
    kind = rule["kind"]
    if kind == "sum":
        values = [_num(r.get(rule["field"])) for r in _rows(record, rule["items"])]
        targets = _targets(record, rule["equals"])
        if not values or any(v is None for v in values) or not targets:
            return None
        total = sum(v for v in values if v is not None)
        return any(_close(total, t, max(tol, 0.005 * len(values))) for t in targets)
    if kind == "add":
        values = [_num(record.get(f)) for f in rule["fields"]]
        targets = _targets(record, rule["equals"])
        if any(v is None for v in values) or not targets:
            return None
        return any(_close(sum(v for v in values if v is not None), t, tol) for t in targets)
    if kind == "product":
        verdicts = []
        for row in _rows(record, rule["items"]):
            factors = [_num(row.get(f)) for f in rule["fields"]]
            target = _num(row.get(rule["equals"]))
            if target is None or any(f is None for f in factors):
                continue
            product = 1.0
            for f in factors:
                product *= f  # type: ignore[operator]
            verdicts.append(_close(product, target, tol))
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
