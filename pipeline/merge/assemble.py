"""Streaming assembly of page results into documents.

Page rows arrive from the workers in any order.  Each is held until every page of its
document has arrived; then the pages are merged into one document row and handed, with the
page rows, to the part writer, which commits whole documents only.  Memory is bounded by the
documents in flight and one part, not by the run.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pipeline.einvoice.documents import XmlOutcome, einvoice_columns
from pipeline.merge.pages import merge_pages
from pipeline.merge.review import document_probability, kind_of, page_probability, review_reasons, tagged
from pipeline.merge.sources import document_grounding
from pipeline.results import PageResult, Work
from pipeline.rules.checks import check_rules, rule_failures
from pipeline.rules.repairs import joined, totals_repair
from pipeline.schema.compiled import CompiledSchema


class DocumentWriter(Protocol):
    """Where whole documents go with their pages (``sink.parquet.PartWriter``: committed parts)."""

    def add_document(self, document: dict[str, Any], pages: list[dict[str, Any]]) -> None: ...


class DocumentAssembler:
    """Pages in, documents out; with each document's e-invoice outcome (``pipeline.einvoice``) to
    say why its XML was not used, or, with ``--einvoice verify``, to check the pages against it."""

    def __init__(self, schema: CompiledSchema, stamp: dict[str, Any], writer: DocumentWriter,
                 einvoices: dict[tuple[str, str], XmlOutcome] | None = None, below: float = 1.0,
                 review_below: float = 0.0) -> None:
        self.schema = schema
        self.below = below  # the agreement under which a field is in doubt (--adjudicate-below)
        self.review_below = review_below  # the probability under which a value is flagged (--review-below)
        self.einvoices = einvoices or {}  # verify or use is told by the pages: an XML page was not read by the model
        self.stamp = stamp
        self.writer = writer
        self.rules = check_rules(schema.raw)
        self._waiting: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self.page_counts = {"ok": 0, "error": 0}
        self.document_counts = {"ok": 0, "partial": 0, "error": 0}
        self.api: dict[str, float] = {"pages_adjudicated": 0, "api_input_tokens": 0, "api_output_tokens": 0,
                                      "api_cost_usd": 0.0}
        self.work = Work()
        self.traces: dict[str, Any] = {"pages_fallback": 0, "dropped_rows": 0, "normalize_nulls": {}, "repairs": 0,
                                       "ungrounded_fields": 0, "documents_needs_review": 0}

    def add(self, result: PageResult) -> dict[str, Any]:
        """Take one page's result; emit its document when complete. Returns the page's row."""
        outcome = self.einvoices.get((result.source_path, result.source_sha256))
        if outcome is not None and outcome.error and result.einvoice_error is None:
            result.einvoice_error = outcome.error  # the model read the page because the XML could not be used
        result.field_probability = page_probability(result, self.schema.raw)
        reasons = result.review_reasons
        page = {**(result.record or {}), **result.columns(), **self.stamp, "created_at": datetime.now(timezone.utc),
                "_record": result.record, "_printed": result.printed,
                "field_confidence": result.field_confidence or None, "disputed_fields": result.disputed,
                "needs_review": bool(reasons), "review_reasons": reasons}
        self.page_counts[result.status] += 1
        self.api["api_input_tokens"] += result.api_input_tokens
        self.api["api_output_tokens"] += result.api_output_tokens
        self.api["api_cost_usd"] += result.api_cost_usd
        self.api["pages_adjudicated"] += result.adjudicated
        self._trace(result)
        key = (result.source_path, result.source_sha256)
        self._waiting[key].append(page)
        if result.page_number is None or len(self._waiting[key]) >= (result.page_count or 1):
            self._emit(key)
        return page

    def _trace(self, result: PageResult) -> None:
        """Count every fallback for the manifest (the rows carry them one by one)."""
        self.work.add(result)
        counts = self.traces
        counts["pages_fallback"] += result.fallback_reason is not None
        counts["dropped_rows"] += result.dropped_rows
        counts["repairs"] += len(result.repairs)
        counts["ungrounded_fields"] += len(result.ungrounded_fields)
        for path in result.normalize_nulls:
            name = re.sub(r"\[\d+\]", "[]", path)
            counts["normalize_nulls"][name] = counts["normalize_nulls"].get(name, 0) + 1

    def finish(self) -> None:
        """Emit documents still waiting (only if a page never came back: none should)."""
        for key in list(self._waiting):
            self._emit(key)

    def _einvoice(self, key: tuple[str, str], pages: list[dict[str, Any]], document: dict[str, Any]) -> dict[str, Any]:
        columns, misread = einvoice_columns(self.einvoices.get(key), pages, document, self.schema.raw, Path(key[0]))
        if misread is not None:
            self.traces["einvoice_misreads"] = self.traces.get("einvoice_misreads", 0) + misread
        return columns

    def _emit(self, key: tuple[str, str]) -> None:
        pages = sorted(self._waiting.pop(key), key=lambda p: p.get("page_number") or 0)
        ok = [p for p in pages if p["status"] == "ok"]
        read = [p for p in ok if p["_record"] is not None]  # the pages of an e-invoice after its first hold none
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
        repairs: list[str] = []
        if read:
            # the last page's totals read as rows only show once the rows of all pages are together
            merged, dropped = self.schema.drop_restated_rows(merge_pages([p["_record"] for p in read], self.schema.raw))
            # the rows and totals of all pages together: a total read wrong on one page, or rows that
            # are not goods, show only now; the amounts of all pages are the candidates
            # (one request that read the whole document was repaired with its page; one that did not, its
            # other pages blank or not read, is repaired here, as the document it is)
            whole = len(read) == 1 and read[0].get("page_number") == 1 and \
                (read[0].get("pages_read") or 1) >= (first.get("page_count") or 1)
            if not whole:
                merged, repairs = totals_repair(self.rules, joined([p["_printed"] for p in read]))(merged)
                self.traces["repairs"] += len(repairs)
            self.traces["dropped_rows"] += dropped
            document["dropped_rows"] = dropped
            problems = self.schema.errors(merged)
            if problems:
                status = "error"
                document["error"] = f"merge_invalid: {'; '.join(problems[:3])}"
            else:
                document.update(merged)
                # XML passed EN 16931's own arithmetic (einvoice.parse): the schema's rules do not judge it
                xml = any(p.get("text_source") == "xml" for p in read)
                document["rule_failures"] = [] if xml else rule_failures(self.rules, merged)
                sources, document["ungrounded_fields"] = document_grounding(read, merged, self.schema.raw)
                document["field_sources"] = sources or None
                probability = document_probability(read, merged, self.schema.raw)
                document["field_probability"] = probability or None
                document["min_probability"] = min(probability.values(), default=None)
        else:  # no page a model read (errors, pages of other kinds): no values, so no rule broken
            document["rule_failures"] = []
        document.update(self._einvoice(key, pages, document))
        document.update(document_kind=kind_of(pages, self.schema.raw),
                        injection_suspected=any(p.get("injection_suspected") for p in pages),
                        hidden_text_chars=sum(p.get("hidden_text_chars") or 0 for p in pages))
        document.update(_confidence(ok, len(pages) > 1))
        document.update(_traces(pages, len(pages) > 1, document.get("dropped_rows") or 0))
        document["repairs"] += [f"document: {r}" for r in repairs]
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
        document["review_reasons"] = review_reasons(status, pages, ok, document, self.schema.raw, self.rules,
                                                    self.below, len(adjudicated) < len(pages), bool(read),
                                                    self.review_below)
        document["needs_review"] = bool(document["review_reasons"])
        document["status"] = status
        self.traces["documents_needs_review"] += bool(document["needs_review"])
        self.writer.add_document(document, pages)
        self.document_counts[status] += 1


def _traces(pages: list[dict[str, Any]], multi: bool, merge_dropped: int) -> dict[str, Any]:
    """The document's fallbacks: its pages' (page-tagged on a longer document) and the merge's."""
    return {
        "fallback_reason": "; ".join(tagged(p, f" {p['fallback_reason']}", multi) for p in pages
                                     if p.get("fallback_reason")) or None,
        "normalize_nulls": [tagged(p, f, multi) for p in pages for f in p.get("normalize_nulls") or []],
        "dropped_rows": merge_dropped + sum(p.get("dropped_rows") or 0 for p in pages),
        "repairs": [tagged(p, f" {r}", multi) for p in pages for r in p.get("repairs") or []],
        "doubts": [tagged(p, f" {d}", multi) for p in pages for d in p.get("doubts") or []],
    }


def _confidence(pages: list[dict[str, Any]], multi: bool) -> dict[str, Any]:
    """Document-level sampling figures: worst and mean page agreement, disputed fields (page-tagged)."""
    scored = [p for p in pages if p.get("agreement") is not None]
    disputed = [tagged(p, f, multi) for p in pages for f in p.get("disputed_fields") or []]
    confidence = {tagged(p, k, multi): v for p in pages for k, v in (p.get("field_confidence") or {}).items()}
    return {
        "samples": max((p.get("samples") or 0 for p in pages), default=0),
        "agreement": round(sum(p["agreement"] for p in scored) / len(scored), 4) if scored else None,
        "min_confidence": min((p["min_confidence"] for p in scored), default=None),
        "field_confidence": confidence or None,
        "disputed_fields": disputed,
    }
