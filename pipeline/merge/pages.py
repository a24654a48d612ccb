"""Per-page extractions -> one record per document.

A multi-page invoice has its header on page 1, line items spread over every page and totals
on the last.  Each top-level property is merged by a rule: arrays are concatenated in page
order (dropping rows that are repeated table headers - no numbers at all - and a row repeated
across a page break), objects are merged field by field, scalars take the first value found,
and properties marked ``"x-merge": "last"`` in the schema (totals) take the last one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipeline.schema.compiled import resolve_ref
from pipeline.screen.kinds import schema_kinds


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


def merge_mode(path: str, schema: dict[str, Any]) -> str:
    """Where the document takes the value at a field path from (as ``merge_value`` does).

    ``last``: the last page that has it ("x-merge": "last", totals); ``first``: the first page
    that has it (header fields, parties); ``rows``: every page's own (arrays are concatenated,
    and a path the schema does not know counts as the page's own).
    """
    node: dict[str, Any] = schema
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        props = resolve_ref(node, schema).get("properties")
        if part.startswith("[") or not isinstance(props, dict) or not isinstance(props.get(part), dict):
            return "rows"
        node = resolve_ref(props[part], schema)
        if node.get("x-merge") == "last":
            return "last"
        if _is_type(node, "array"):
            return "rows"
    return "first"


def covers_document(page_number: int, page_count: int | None, pages_read: int = 1) -> bool:
    """Whether a request that read ``pages_read`` pages from ``page_number`` (``--read-pages``)
    read the whole document: then the rules that hold for whole documents apply to its answer."""
    return page_number == 1 and pages_read >= (page_count or 1)


def _deferred(path: str, schema: dict[str, Any], page_number: int | None, page_count: int | None,
              pages_read: int = 1) -> str | None:
    """The merge mode of a field that another page of the document supplies in the usual case
    (``last``: a later page, ``first``: an earlier one), else None.  A request that read
    ``pages_read`` pages from ``page_number`` (``--read-pages``) stands for all of them."""
    if page_number is None or page_count is None or page_count <= 1:
        return None
    mode = merge_mode(path, schema)
    last_read = page_number + max(1, pages_read) - 1
    later, earlier = mode == "last" and last_read < page_count, mode == "first" and page_number > 1
    return mode if later or earlier else None


def open_disputes(confidence: dict[str, float], schema: dict[str, Any], page_number: int | None,
                  page_count: int | None, ungrounded: Sequence[str] = (), pages_read: int = 1,
                  below: float = 1.0) -> list[str]:
    """The page's disputed field paths that still matter: a value fewer than ``below`` of the samples
    agree on (1.0: any disagreement; 0.6: no majority), and any value printed nowhere on the page
    (``ungrounded``, pipeline.ground).

    A multi-page invoice prints its header and parties on page 1 and its totals on the last;
    the document takes each from there (``merge_value``).  A disagreement about the totals on an
    earlier page (often: whether there are any) or about a repeated header on a later page does
    not change the document, so it neither sends the page to the API nor flags it.  Where the
    usual page lacks the field and the document does take the disputed value, the document is
    flagged (``supplied_disputed``).
    """
    doubtful = {p for p, c in confidence.items() if c < below} | set(ungrounded)
    return sorted(p for p in doubtful if not _deferred(p, schema, page_number, page_count, pages_read))


def supplied_disputed(pages: list[dict[str, Any]], schema: dict[str, Any], below: float = 1.0) -> list[str]:
    """Deferred disputes (see ``open_disputes``, ``below`` as there) whose value the merged document
    took after all.

    ``pages`` are the ok page rows in page order, each with ``_record``, ``field_confidence``,
    ``ungrounded_fields``, ``page_number``, ``page_count`` and ``adjudicated``.
    """
    found = []
    for i, page in enumerate(pages):
        if page.get("adjudicated"):
            continue
        doubtful = {p for p, c in (page.get("field_confidence") or {}).items() if c < below}
        for path in sorted(doubtful | set(page.get("ungrounded_fields") or [])):
            mode = _deferred(path, schema, page.get("page_number"), page.get("page_count"), page.get("pages_read") or 1)
            if mode is None:
                continue
            others = pages[i + 1:] if mode == "last" else pages[:i]
            if not any(at_path(other.get("_record"), path) not in (None, "", []) for other in others):
                found.append(f"p{page.get('page_number')}:{path}")
    return found


def at_path(record: Any, path: str) -> Any:
    for key in path.split("."):
        record = record.get(key) if isinstance(record, dict) else None
    return record


def document_kind(kinds: Sequence[str | None], schema: dict[str, Any]) -> str | None:
    """A document's kind from its pages': the first kind the schema is for (a cover letter before an
    invoice makes an invoice), else the first that is neither blank nor other, else other or blank."""
    known = [k for k in kinds if k]
    read = schema_kinds(schema)
    for wanted in (lambda k: k in read, lambda k: k not in ("blank", "other"), lambda k: k == "other"):
        found = next((k for k in known if wanted(k)), None)
        if found:
            return found
    return known[0] if known else None
