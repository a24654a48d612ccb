"""Streaming assembly of page results into documents.

Page rows arrive from the workers in any order.  Each is held until every page of its
document has arrived; then the pages are merged into one document row and handed, with the
page rows, to the part writer, which commits whole documents only.  Memory is bounded by the
documents in flight and one part, not by the run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from pipeline.merge import merge_pages, open_disputes, supplied_disputed
from pipeline.rules import check_rules, rule_failures
from pipeline.schema import CompiledSchema
from pipeline.sink import PartWriter


class DocumentAssembler:
    def __init__(self, schema: CompiledSchema, stamp: dict[str, Any], writer: PartWriter) -> None:
        self.schema = schema
        self.stamp = stamp
        self.writer = writer
        self.rules = check_rules(schema.raw)
        self._waiting: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self.page_counts = {"ok": 0, "error": 0}
        self.document_counts = {"ok": 0, "partial": 0, "error": 0}
        self.api: dict[str, float] = {"pages_adjudicated": 0, "api_input_tokens": 0, "api_output_tokens": 0,
                                      "api_cost_usd": 0.0}

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        """Take one page row; emit its document when complete. Returns the full page row."""
        record = json.loads(row["record_json"]) if row.get("record_json") else None
        confidence = json.loads(row["confidence_json"]) if row.get("confidence_json") else {}
        disputed = sorted(p for p, c in confidence.items() if c < 1.0)
        still_open = open_disputes(confidence, self.schema.raw, row.get("page_number"), row.get("page_count"))
        now = datetime.now(timezone.utc)
        page = {**(record or {}), **row, **self.stamp, "created_at": now, "_record": record,
                "field_confidence": confidence or None, "disputed_fields": disputed,
                "needs_review": row["status"] != "ok" or (bool(still_open) and not row.get("adjudicated"))}
        self.page_counts[row["status"]] += 1
        for column in ("api_input_tokens", "api_output_tokens", "api_cost_usd"):
            self.api[column] += row.get(column) or 0
        self.api["pages_adjudicated"] += bool(row.get("adjudicated"))
        key = (row["source_path"], row["source_sha256"])
        self._waiting[key].append(page)
        expected = row.get("page_count") or 1
        if row.get("page_number") is None or len(self._waiting[key]) >= expected:
            self._emit(key)
        return page

    def finish(self) -> None:
        """Emit documents still waiting (only if a page never came back: none should)."""
        for key in list(self._waiting):
            self._emit(key)

    def _emit(self, key: tuple[str, str]) -> None:
        pages = sorted(self._waiting.pop(key), key=lambda p: p.get("page_number") or 0)
        ok = [p for p in pages if p["status"] == "ok"]
        errors = [p for p in pages if p["status"] != "ok"]
        first = pages[0]
        document: dict[str, Any] = {
            **self.stamp, "source_path": key[0], "source_sha256": key[1],
            "page_count": first.get("page_count"), "pages_ok": len(ok), "pages_error": len(errors),
            "latency_ms": round(sum(p.get("latency_ms") or 0.0 for p in pages), 2),
            "created_at": datetime.now(timezone.utc),
            "error": "; ".join(f"page {p.get('page_number')}: {p.get('error')}" for p in errors)[:1000] or None,
        }
        status = "ok" if not errors else ("partial" if ok else "error")
        if ok:
            # the last page's totals read as rows only show once the rows of all pages are together
            merged = self.schema.mend(merge_pages([p["_record"] for p in ok], self.schema.raw))
            problems = self.schema.errors(merged)
            if problems:
                status = "error"
                document["error"] = f"merge_invalid: {'; '.join(problems[:3])}"
            else:
                document.update(merged)
                document["rule_failures"] = rule_failures(self.rules, merged)
        document.update(_confidence(ok, len(pages) > 1))
        adjudicated = [p for p in pages if p.get("adjudicated")]
        document.update(
            adjudicated=bool(adjudicated),
            adjudicator_model=next((p["adjudicator_model"] for p in pages if p.get("adjudicator_model")), None),
            adjudication_reason="; ".join(f"p{p['page_number']}: {p['adjudication_reason']}" for p in pages
                                          if p.get("adjudication_reason")) or None,
            api_input_tokens=sum(p.get("api_input_tokens") or 0 for p in pages),
            api_output_tokens=sum(p.get("api_output_tokens") or 0 for p in pages),
            api_cost_usd=round(sum(p.get("api_cost_usd") or 0.0 for p in pages), 6),
        )
        # a dispute left to another page (merge.open_disputes) counts only where that page lacked the field
        document["needs_review"] = status != "ok" or any(p.get("needs_review") for p in pages) or (
            bool(document.get("rule_failures")) and len(adjudicated) < len(pages)) or \
            bool(supplied_disputed(ok, self.schema.raw))
        document["status"] = status
        self.writer.add_document(document, pages)
        self.document_counts[status] += 1


def _confidence(pages: list[dict[str, Any]], multi: bool) -> dict[str, Any]:
    """Document-level sampling figures: worst and mean page agreement, disputed fields (page-tagged)."""
    scored = [p for p in pages if p.get("agreement") is not None]
    disputed = [f"p{p['page_number']}:{f}" if multi else f for p in pages for f in p.get("disputed_fields") or []]
    confidence = {(f"p{p['page_number']}:{k}" if multi else k): v for p in pages
                  for k, v in (p.get("field_confidence") or {}).items()}
    return {
        "samples": max((p.get("samples") or 0 for p in pages), default=0),
        "agreement": round(sum(p["agreement"] for p in scored) / len(scored), 4) if scored else None,
        "min_confidence": min((p["min_confidence"] for p in scored), default=None),
        "field_confidence": confidence or None,
        "disputed_fields": disputed,
    }
