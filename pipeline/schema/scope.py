"""Which page of a document supplies a field, and so which of a page's doubts matter (``x-merge``).

A multi-page invoice prints its header and parties on page 1 and its totals on the last; the
document takes each from there (``merge.pages.merge_value``).  This is the schema's policy, read by
every stage that must know it: the worker (which doubts go to the API or flag the page), the
adjudicator (whole-document rules apply only to a request that read the whole document) and the
assembler (a deferred doubt whose value the document took after all).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipeline.schema.paths import at_path, has_type, resolve_ref


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
        if has_type(node, "array"):
            return "rows"
    return "first"


def covers_document(page_number: int, page_count: int | None, pages_read: int = 1) -> bool:
    """Whether a request that read ``pages_read`` pages from ``page_number`` (``--read-pages``)
    read the whole document: then the rules that hold for whole documents apply to its answer."""
    return page_number == 1 and pages_read >= (page_count or 1)


def deferred_to(path: str, schema: dict[str, Any], page_number: int | None, page_count: int | None,
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
    return sorted(p for p in doubtful if not deferred_to(p, schema, page_number, page_count, pages_read))


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
            mode = deferred_to(path, schema, page.get("page_number"), page.get("page_count"),
                               page.get("pages_read") or 1)
            if mode is None:
                continue
            others = pages[i + 1:] if mode == "last" else pages[:i]
            if not any(at_path(other.get("_record"), path) not in (None, "", []) for other in others):
                found.append(f"p{page.get('page_number')}:{path}")
    return found
