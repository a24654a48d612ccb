"""Whether a person should look at a document, and why: one line per reason (``review_reasons``).

``needs_review`` is a promise: a document without a reason is right as far as anything here can
tell.  So every doubt that survived the worker and the API counts (the pages' own reasons), and so
do what only the whole document shows: a broken rule, a disputed value no other page supplied, a
field every document of its kind has that the merged record lacks, and a document none of whose
pages is of a kind the schema is for (read for the amounts it prints, never skipped as fine).
"""

from __future__ import annotations

from typing import Any

from pipeline.merge.sources import taken_from
from pipeline.results import PageResult
from pipeline.rules.checks import flagging
from pipeline.rules.confidence import field_probability
from pipeline.rules.expected import absent, kind_rules
from pipeline.schema.scope import supplied_disputed
from pipeline.screen.kinds import document_kind, schema_kinds


def tagged(page: dict[str, Any], text: str, multi: bool) -> str:
    """``text`` as a document says it: prefixed by its page (``p2:``) when the document has several."""
    return f"p{page['page_number']}:{text}" if multi else text.lstrip()


def page_probability(result: PageResult, schema: dict[str, Any]) -> dict[str, float]:
    """Each value's probability of being right (``rules.confidence``) on a page the local model read;
    none for an API's record (its signs are not the local model's) or a page without one."""
    if result.status != "ok" or result.adjudicated or result.record is None:
        return {}
    return field_probability(result.record, schema, confidence=result.field_confidence, certainty=result.certainty,
                             sources=result.field_sources, open_fields=result.open_fields, doubts=result.doubts,
                             repairs=result.repairs, samples=result.samples, truncated=result.truncated)


def document_probability(read: list[dict[str, Any]], merged: dict[str, Any],
                         schema: dict[str, Any]) -> dict[str, float]:
    """The document's values' probabilities: each from the page whose value it took; a value no page
    gave (null on every page) from the first page, whose null it is."""
    paths = dict.fromkeys(path for page in read for path in page.get("field_probability") or {})
    out: dict[str, float] = {}
    for path in paths:  # which page gave the value is worked out once a path, not once a page
        chosen = read[taken_from(read, merged, path, schema) or 0].get("field_probability") or {}
        if path in chosen:
            out[path] = chosen[path]
    return out


def kind_of(pages: list[dict[str, Any]], schema: dict[str, Any]) -> str | None:
    return document_kind([p.get("page_kind") for p in pages], schema)


def review_reasons(status: str, pages: list[dict[str, Any]], ok: list[dict[str, Any]], document: dict[str, Any],
                   schema: dict[str, Any], rules: list[dict[str, Any]], below: float, unsettled: bool,
                   read: bool, review_below: float = 0.0) -> list[str]:
    """Why a person should look at the document (none: it needs no review).  ``unsettled``: some
    page was not adjudicated; ``read``: some page was read by a model (or its XML); ``review_below``:
    a value less likely right than this is a reason too (``--review-below``)."""
    multi = len(pages) > 1
    reasons = [f"document {status}"] if status != "ok" else []
    reasons += [tagged(p, f" {r}", multi) for p in pages for r in p.get("review_reasons") or []]
    if document.get("einvoice_mismatches"):
        reasons.append(f"the pages disagree with the e-invoice XML: {document['einvoice_mismatches'][0]}")
    kind = document.get("document_kind")
    broken = flagging(kind_rules(rules, schema, kind), document.get("rule_failures") or [])
    if broken and unsettled:
        reasons.append(f"rules broken: {', '.join(broken)}")
    # a dispute left to another page (schema.scope.open_disputes) counts only where that page lacked the field
    if taken := supplied_disputed(ok, schema, below):
        reasons.append(f"a disputed value no other page supplied: {', '.join(taken[:8])}")
    probability = document.get("field_probability") or {}
    if unsure := sorted((p, v) for p, v in probability.items() if v < review_below):
        reasons.append("unsure (field_probability under --review-below): "
                       + ", ".join(f"{p} {v:.2f}" for p, v in unsure[:8]))
    if read and status == "ok" and document.get("einvoice") != "xml":
        wanted = schema_kinds(schema)
        if kind is not None and kind not in wanted:
            reasons.append(f"no page is of a kind the schema is for ({', '.join(wanted)}): read for the amounts "
                           f"it prints, as {kind}")
        if multi and (gone := absent(document, schema, kind)):
            reasons += [f"missing: {path}" for path in gone]
    return reasons
