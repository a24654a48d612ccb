"""Whether a person should look at a document, and why: one line per reason (``review_reasons``).

``needs_review`` is a promise: a document without a reason is right as far as anything here can
tell.  So every doubt that survived the worker and the API counts (the pages' own reasons), and so
do what only the whole document shows: a broken rule, a disputed value no other page supplied, a
field every document of its kind has that the merged record lacks, and a document none of whose
pages is of a kind the schema is for (read for the amounts it prints, never skipped as fine).
"""

from __future__ import annotations

from typing import Any

from pipeline.rules.checks import flagging
from pipeline.rules.expected import absent
from pipeline.schema.scope import supplied_disputed
from pipeline.screen.kinds import document_kind, schema_kinds


def tagged(page: dict[str, Any], text: str, multi: bool) -> str:
    """``text`` as a document says it: prefixed by its page (``p2:``) when the document has several."""
    return f"p{page['page_number']}:{text}" if multi else text.lstrip()


def kind_of(pages: list[dict[str, Any]], schema: dict[str, Any]) -> str | None:
    return document_kind([p.get("page_kind") for p in pages], schema)


def review_reasons(status: str, pages: list[dict[str, Any]], ok: list[dict[str, Any]], document: dict[str, Any],
                   schema: dict[str, Any], rules: list[dict[str, Any]], below: float, unsettled: bool,
                   read: bool) -> list[str]:
    """Why a person should look at the document (none: it needs no review).  ``unsettled``: some
    page was not adjudicated; ``read``: some page was read by a model (or its XML)."""
    multi = len(pages) > 1
    reasons = [f"document {status}"] if status != "ok" else []
    reasons += [tagged(p, f" {r}", multi) for p in pages for r in p.get("review_reasons") or []]
    if document.get("einvoice_mismatches"):
        reasons.append(f"the pages disagree with the e-invoice XML: {document['einvoice_mismatches'][0]}")
    broken = flagging(rules, document.get("rule_failures") or [])
    if broken and unsettled:
        reasons.append(f"rules broken: {', '.join(broken)}")
    # a dispute left to another page (schema.scope.open_disputes) counts only where that page lacked the field
    if taken := supplied_disputed(ok, schema, below):
        reasons.append(f"a disputed value no other page supplied: {', '.join(taken[:8])}")
    kind = document.get("document_kind")
    if read and status == "ok" and document.get("einvoice") != "xml":
        wanted = schema_kinds(schema)
        if kind is not None and kind not in wanted:
            reasons.append(f"no page is of a kind the schema is for ({', '.join(wanted)}): read for the amounts "
                           f"it prints, as {kind}")
        if multi and (gone := absent(document, schema, kind)):
            reasons += [f"missing: {path}" for path in gone]
    return reasons
