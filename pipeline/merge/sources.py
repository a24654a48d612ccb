"""A document's ``field_sources``: for each of its values, the source on the page it was taken from.

The merge takes a header field from the first page that has it, a total from the last
(``merge_mode``), and concatenates rows; so a document's field keeps the source of the page
whose value it took, and a row keeps the sources of the page row it came from (found by
equality in page order: the merge drops repeated headers and carried-over rows, which shifts
row numbers).
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.ground.sources import ungrounded
from pipeline.schema.paths import at_path
from pipeline.schema.scope import merge_mode

_ROW = re.compile(r"^([^\[]+)\[(\d+)\](.*)$")


def document_grounding(pages: list[dict[str, Any]], merged: dict[str, Any],
                       schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The document's ``field_sources`` and its ``ungrounded_fields`` (values printed nowhere)."""
    sources = document_sources(pages, merged, schema)
    return sources, ungrounded(sources)


def document_sources(pages: list[dict[str, Any]], merged: dict[str, Any],
                     schema: dict[str, Any]) -> dict[str, Any]:
    """``pages``: the ok page rows in page order, each with ``_record`` and ``field_sources``."""
    out: dict[str, Any] = {}
    rows_taken: dict[str, list[tuple[int, int]]] = {}  # array -> (page position, page row) per document row
    for position, page in enumerate(pages):
        for path, source in (page.get("field_sources") or {}).items():
            m = _ROW.match(path)
            if m is None:
                _scalar(out, path, source, position, pages, merged, schema)
                continue
            name, row, rest = m.group(1), int(m.group(2)), m.group(3)
            taken = rows_taken.get(name)
            if taken is None:
                taken = rows_taken[name] = _row_origins(name, pages, merged)
            if (position, row) in taken:
                out[f"{name}[{taken.index((position, row))}]{rest}"] = source
    return out


def _scalar(out: dict[str, Any], path: str, source: Any, position: int, pages: list[dict[str, Any]],
            merged: dict[str, Any], schema: dict[str, Any]) -> None:
    """Keep ``source`` if its page is the one the document took the value at ``path`` from."""
    if taken_from(pages, merged, path, schema) == position:
        out[path] = source


def taken_from(pages: list[dict[str, Any]], merged: dict[str, Any], path: str, schema: dict[str, Any]) -> int | None:
    """The position of the page whose value the document took at ``path`` (a value outside arrays):
    the first page that has one, the last for ``x-merge: last``; None where the document has none."""
    having = [i for i, p in enumerate(pages) if at_path(p.get("_record"), path) not in (None, "", [])]
    if not having or at_path(merged, path) in (None, "", []):
        return None
    return having[-1] if merge_mode(path, schema) == "last" else having[0]


def _row_origins(name: str, pages: list[dict[str, Any]], merged: dict[str, Any]) -> list[tuple[int, int]]:
    """For each row of the document's array ``name``: (page position, row on that page)."""
    candidates = [(i, j, row) for i, p in enumerate(pages)
                  for j, row in enumerate(at_path(p.get("_record"), name) or [])]
    origins: list[tuple[int, int]] = []
    start = 0
    for row in merged.get(name) or []:
        for k in range(start, len(candidates)):
            if candidates[k][2] == row:
                origins.append(candidates[k][:2])
                start = k + 1
                break
        else:
            origins.append((-1, -1))
    return origins
