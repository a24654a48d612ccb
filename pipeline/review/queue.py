"""Which documents need a person, and in what order: most doubtful first.

A document is in the queue when the run said so (``needs_review``), a page failed, or a rule
broke, and nobody has reviewed it yet (a review is keyed by the document's content hash, so a
document reviewed once stays out of the queue when a later run reads it again).  Its doubt is
the sum of what is wrong with it, worst first: no record at all, failed pages, text that spoke
to the machine or hid from the reader, broken rules, values printed nowhere, disputes between
the samples, and finally low agreement, so a person's first minutes go where the machine is
most likely wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# reason -> weight in the doubt order
REASONS = {
    "failed": 8.0, "pages failed": 4.0, "injection": 4.0, "hidden text": 3.0, "rules": 2.0,
    "e-invoice mismatch": 2.0, "printed nowhere": 1.0, "disputed": 1.0, "in doubt": 1.0, "flagged": 0.5,
}


@dataclass(frozen=True)
class QueueItem:
    key: str  # the document's sha256 ('' for a file that could not be read at all)
    source_path: str
    run_id: str
    run_date: str
    status: str
    reasons: tuple[str, ...]
    doubt: float
    agreement: float | None
    error: str | None
    row: dict[str, Any]


def reasons_of(doc: dict[str, Any]) -> list[str]:
    """Why a person should look at this document (empty: the machine is sure of it)."""
    out = []
    status = doc.get("status")
    if status == "error":
        out.append("failed")
    elif status == "partial" or (doc.get("pages_error") or 0) > 0:
        out.append("pages failed")
    if doc.get("injection_suspected"):
        out.append("injection")
    if (doc.get("hidden_text_chars") or 0) > 0:
        out.append("hidden text")
    if doc.get("rule_failures"):
        out.append("rules")
    if doc.get("einvoice_mismatches"):
        out.append("e-invoice mismatch")
    if doc.get("ungrounded_fields"):
        out.append("printed nowhere")
    if doc.get("disputed_fields"):
        out.append("disputed")
    if doc.get("doubts"):  # a value missing, a shared currency sign, a date's order unproven (rules.settle)
        out.append("in doubt")
    if doc.get("needs_review") and not out:
        out.append("flagged")
    return out


def doubt(doc: dict[str, Any], reasons: list[str]) -> float:
    score = sum(REASONS[r] for r in reasons)
    score += 0.5 * len(doc.get("rule_failures") or []) + 0.1 * len(doc.get("disputed_fields") or [])
    agreement = doc.get("agreement")
    return round(score + (1.0 - agreement if agreement is not None else 0.0), 4)


def build_queue(documents: list[dict[str, Any]], reviewed: set[str], reason: str | None = None,
                run_date: str | None = None) -> list[QueueItem]:
    """The documents nobody has reviewed that need a person, most doubtful first, filtered by a
    reason and a run date when given."""
    items = []
    for doc in documents:
        key = doc.get("source_sha256") or ""
        why = reasons_of(doc)
        if not why or (key and key in reviewed):
            continue
        if (reason and reason not in why) or (run_date and str(doc.get("run_date")) != run_date):
            continue
        items.append(QueueItem(key, doc["source_path"], doc.get("run_id") or "", str(doc.get("run_date") or ""),
                               doc.get("status") or "", tuple(why), doubt(doc, why), doc.get("agreement"),
                               doc.get("error"), doc))
    return sorted(items, key=lambda i: (-i.doubt, i.source_path))


def counts(documents: list[dict[str, Any]], reviewed: set[str]) -> dict[str, int]:
    """Documents per reason in the open queue, and the totals a reviewer's day is measured by."""
    queue = build_queue(documents, reviewed)
    out = {"documents": len(documents), "open": len(queue),
           "reviewed": len({d.get("source_sha256") for d in documents} & reviewed)}
    for reason in REASONS:
        out[reason] = sum(reason in item.reasons for item in queue)
    return out
