"""Per-page extractions -> one record per document.

A multi-page invoice has its header on page 1, line items spread over every page and totals
on the last.  Each top-level property is merged by a rule: arrays are concatenated in page
order (dropping rows that are repeated table headers - no numbers at all - and a row repeated
across a page break), objects are merged field by field, scalars take the first value found,
and properties marked ``"x-merge": "last"`` in the schema (totals) take the last one.
"""

from __future__ import annotations

from typing import Any

from pipeline.schema.paths import has_type, resolve_ref


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
    if has_type(node, "array"):
        merged: list[Any] = []
        for page_items in values:
            rows = [item for item in (page_items or []) if not _header_row(item)]
            if rows and merged and merged[-1] == rows[0]:
                rows = rows[1:]  # carried over across the page break
            merged.extend(rows)
        return merged
    if has_type(node, "object") and "properties" in node:
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
