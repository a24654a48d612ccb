"""Per-page extractions -> one record per document.

A multi-page invoice has its header on page 1, line items spread over every page and totals
on the last.  Each top-level property is merged by a rule: arrays are concatenated in page
order (dropping rows that are repeated table headers - no numbers at all - and a row repeated
across a page break), objects are merged field by field, scalars take the first value found,
and properties marked ``"x-merge": "last"`` in the schema (totals) take the last one.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.schema import resolve_ref


def _is_type(node: dict[str, Any], name: str) -> bool:
    t = node.get("type")
    return name in t if isinstance(t, list) else t == name


def _first(values: list[Any]) -> Any:
    return next((v for v in values if v not in (None, "", [])), None)


def _header_row(item: Any) -> bool:
    """A table header repeated on a page: text only, no number anywhere."""
    return isinstance(item, dict) and not any(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               for v in item.values())


def merge_value(values: list[Any], node: dict[str, Any], root: dict[str, Any]) -> Any:
    node = resolve_ref(node, root)
    mode = node.get("x-merge")
    if mode == "last":
        return next((v for v in reversed(values) if v not in (None, "")), None)
    if _is_type(node, "array"):
        merged: list[Any] = []
        for page_items in values:
            rows = [item for item in (page_items or []) if not _header_row(item)]
            if rows and merged and merged[-1] == rows[0]:
                rows = rows[1:]  # carried over across the page break
            merged.extend(rows)
        return merged
    if _is_type(node, "object") and "properties" in node:
        present = [v for v in values if isinstance(v, dict)]
        if not present:
            return None
        return {k: merge_value([v.get(k) for v in present], sub, root)
                for k, sub in node["properties"].items()}
    return _first(values)


def merge_pages(records: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
    """Merge page records (already in page order) into one document record."""
    return {name: merge_value([r.get(name) for r in records], sub, schema)
            for name, sub in schema["properties"].items()}


def merged_last(schema: dict[str, Any]) -> frozenset[str]:
    """The top-level properties a document takes from its last page that has them (totals)."""
    props = schema.get("properties") or {}
    return frozenset(k for k, sub in props.items()
                     if isinstance(sub, dict) and resolve_ref(sub, schema).get("x-merge") == "last")


def open_disputes(confidence: dict[str, float], schema: dict[str, Any], page_number: int | None,
                  page_count: int | None, below: float = 1.0) -> list[str]:
    """The page's disputed field paths that still matter (agreement below ``below``).

    On a page before a document's last, a disagreement about its totals ("x-merge": "last") is
    left to the later pages: a two-page invoice prints them on page 2, and the samples of page 1
    only disagree on whether there are any.  Sending page 1 to the API for that buys nothing;
    where no later page has them, the document is flagged (``supplied_disputed``).
    """
    later = page_number is not None and page_count is not None and page_number < page_count
    deferred = merged_last(schema) if later else frozenset()
    return sorted(p for p, c in confidence.items() if c < below and _top(p) not in deferred)


def supplied_disputed(pages: list[dict[str, Any]], schema: dict[str, Any]) -> list[str]:
    """Totals the merged document took from a page where they were disputed and not adjudicated.

    ``pages`` are the ok page rows in page order, each with ``_record`` and ``field_confidence``.
    """
    found = []
    for name in sorted(merged_last(schema)):
        source = next((p for p in reversed(pages) if (p["_record"] or {}).get(name) not in (None, "")), None)
        if source is None or source.get("adjudicated"):
            continue
        confidence = source.get("field_confidence") or {}
        if any(c < 1.0 and _top(path) == name for path, c in confidence.items()):
            found.append(f"p{source.get('page_number')}:{name}")
    return found


def _top(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]
