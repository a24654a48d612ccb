"""What a document of a kind always has, and which fields a kind has at all: from the schema.

``"x-expected": {"invoice": ["invoice_number", "issue_date", "seller.name", ...], "receipt": [...]}``
names the values every document of a kind prints.  One of them that ends null is a doubt, not a
quiet gap: the model did not find it, or normalising threw away what it wrote ("29 maart 2014"
before dates in every language were read, "315.50, 1577.50" as one amount).  An amount or a date a
sample wrote that normalising threw away, and that the record ends without, is a doubt too.

``"x-kind-fields": {"receipt": ["seller.name", "issue_date", ...]}`` names the fields a kind has
(a path and what is under it): a till receipt has no buyer, no due date and often no number, so a
disagreement over them is no reason to flag a receipt.  A kind without an entry has every field.
Nor is a broken rule that checks none of the kind's fields, or that sums rows the kind does not list:
a till slip's rows are abbreviations, codes and its own subtotal and tax lines, which a model lists
as rows; that they do not add up says nothing of the total the receipt is kept for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.consensus.compare import field_kind
from pipeline.rules.checks import rule_paths
from pipeline.schema.paths import at_path, kind_paths, node_at

EMPTY: tuple[Any, ...] = (None, "", [])


def expected_fields(schema: dict[str, Any], kind: str | None) -> list[str]:
    """The paths every document of ``kind`` has (the schema's first kind's where the page's kind is
    not one the schema lists: a page read for its amounts is read as that kind; none where the
    page's kind is not known)."""
    table = kind_paths(schema, "x-expected")
    if kind is None:  # not screened: nothing is known of what the page must have
        return []
    if kind not in table:
        listed = schema.get("x-document-kinds")
        kind = listed[0] if isinstance(listed, list) and listed else kind
    return table.get(kind, [])


def absent(record: dict[str, Any], schema: dict[str, Any], kind: str | None,
           unreadable: Sequence[str] = ()) -> dict[str, str]:
    """The doubts of values missing from ``record``: path -> why."""
    found = {path: f"every {kind or 'document'} has one, and none was read"
             for path in expected_fields(schema, kind) if at_path(record, path) in EMPTY}
    for path in unreadable:
        # an amount or a date written and thrown away was there and was misread (a text that does not
        # match its pattern, such as a VAT id where a model writes "none", is not that)
        typed = field_kind(node_at(schema, path), schema) in ("date", "number")
        if at_path(record, path) in EMPTY and (path in found or typed):
            found[path] = "a sample's value could not be read as the field's type, so none was kept"
    return found


def kind_fields(paths: Sequence[str], schema: dict[str, Any], kind: str | None) -> list[str]:
    """``paths`` without those of fields a document of ``kind`` does not have."""
    fields = kind_paths(schema, "x-kind-fields").get(kind or "")
    if fields is None:
        return list(paths)
    return [p for p in paths if any(p == f or p.startswith((f"{f}.", f"{f}[")) or f.startswith(f"{p}.")
                                    for f in fields)]


def kind_rules(rules: list[dict[str, Any]], schema: dict[str, Any], kind: str | None) -> list[dict[str, Any]]:
    """The rules whose breaking flags a document of ``kind``: every rule, for a kind without
    ``x-kind-fields``; else those that check one of its fields and sum no rows it does not have."""
    if kind_paths(schema, "x-kind-fields").get(kind or "") is None:
        return rules
    return [r for r in rules if kind_fields(rule_paths(r, {}), schema, kind)
            and ("items" not in r or kind_fields([r["items"]], schema, kind))]


def decisive(schema: dict[str, Any], path: str, kind: str | None) -> bool:
    """A value whose exact reading decides the record: a date, an amount, a currency, a code the schema
    constrains (enum, pattern, format), or one every document of ``kind`` has.  Free text (an address, a
    row's description) is not: a model unsure of its wording has not misread it."""
    node = node_at(schema, path)
    if field_kind(node, schema) in ("date", "number", "currency"):
        return True
    options = [node, *(node or {}).get("anyOf", [])] if isinstance(node, dict) else []
    if any(isinstance(o, dict) and ({"enum", "pattern", "format"} & o.keys()) for o in options):
        return True
    return path in expected_fields(schema, kind)
