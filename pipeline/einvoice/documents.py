"""What a document's e-invoice XML gives the run: its record in the schema's shape, or why not.

``inspect`` is the one place that turns an input file into that outcome; the driver uses it to
take records from the XML (``--einvoice use``), the assembler to check the model against it
(``verify``), and the evaluation to score a model-path run against it (free ground truth).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.consensus.normalize import normalize_record
from pipeline.einvoice.grounding import disagreements
from pipeline.einvoice.mapping import check_annotations, einvoice_properties, to_record
from pipeline.einvoice.parse import parse
from pipeline.einvoice.read import EInvoiceError, find_xml
from pipeline.results import PageResult
from pipeline.schema.compiled import CompiledSchema

Mode = Literal["use", "verify", "ignore"]
SUFFIXES = frozenset({".pdf", ".xml"})


@dataclass(frozen=True)
class XmlOutcome:
    """A document's e-invoice: the record its XML states (checked), or the reason it is not used."""

    record: dict[str, Any] | None
    error: str | None
    source: str | None = None  # the attachment's or file's name
    flavor: str | None = None
    credit_note: bool = False


def check_schema(schema: CompiledSchema) -> None:
    """Refuse, before any page is read, an ``x-einvoice`` annotation that names no term extract reads."""
    check_annotations(schema.raw)


def inspect(path: Path, schema: CompiledSchema) -> XmlOutcome | None:
    """The e-invoice outcome of one input, None when it carries no e-invoice (or the schema has
    not opted in with ``x-einvoice``).  Never raises for a bad file: the outcome says why."""
    if path.suffix.lower() not in SUFFIXES or not einvoice_properties(schema.raw):
        return None
    try:
        attachment = find_xml(path)
        if attachment is None:
            return None
        invoice = parse(attachment)
    except EInvoiceError as exc:
        return XmlOutcome(None, str(exc))
    except Exception as exc:  # a bug or a library failure costs this document's XML, not the run
        return XmlOutcome(None, f"cannot be read: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    record = normalize_record(to_record(invoice, schema.raw), schema.raw)
    problems = schema.errors(record)
    if problems:
        return XmlOutcome(None, f"{attachment.name}: its values do not fit the schema: {'; '.join(problems[:2])}",
                          attachment.name, invoice.flavor, invoice.credit_note)
    return XmlOutcome(record, None, attachment.name, invoice.flavor, invoice.credit_note)


def stated(record: Any) -> Any:
    """Only what the XML states: nulls and empty lists dropped (absent means unknown, as in truth files)."""
    if isinstance(record, dict):
        kept = {k: stated(v) for k, v in record.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {})}
    if isinstance(record, list):
        return [stated(v) for v in record]
    return record


def xml_pages(tasks: list[dict[str, Any]], outcome: XmlOutcome | None, mode: Mode) -> list[PageResult]:
    """The page results of a document read from its XML: page 1 holds the record, exactly as the XML
    states it (confidence 1, no model time), the other pages none; an XML input whose XML cannot be
    used (or with ``--einvoice ignore``) is an error row, since it has no page for a model to read."""
    if outcome is None or outcome.record is None:
        why = outcome.error if outcome is not None else (
            "--einvoice ignore: an XML input has no page for a model to read" if mode == "ignore"
            else "no EN 16931 invoice in this XML (or the schema has no x-einvoice annotations)")
        return [PageResult.for_task(task, status="error", error=f"einvoice_error: {why}", einvoice_error=why)
                for task in tasks]
    results = []
    for task in tasks:
        first = task["page_number"] == 1
        results.append(PageResult.for_task(task, status="ok", record=outcome.record if first else None,
                                           text_source="xml", samples=0, agreement=1.0 if first else None,
                                           min_confidence=1.0 if first else None))
    return results


def einvoice_columns(outcome: XmlOutcome | None, pages: list[dict[str, Any]], document: dict[str, Any],
                     schema: dict[str, Any],
                     source: Path) -> tuple[dict[str, Any], int | None]:
    """A document's e-invoice columns, and how many fields the model misread (None: not compared).

    Read from the XML: ``einvoice`` is ``xml``.  Verified: the pages were read by the model too;
    every field where the page shows something other than the XML is recorded with both values
    (``einvoice_mismatches``; where the model's reading differs but the page does show the XML's
    value, the model misread it, counted in the manifest's traces), and the document keeps the
    XML's values.
    """
    if outcome is None or outcome.record is None:
        return {"einvoice": None, "einvoice_error": outcome.error if outcome else None, "einvoice_mismatches": []}, None
    if any(p.get("text_source") == "xml" for p in pages):
        return {"einvoice": "xml", "einvoice_error": None, "einvoice_mismatches": []}, None
    names = list(schema["properties"])
    misread = None
    if any(name in document for name in names):
        found = {name: document.get(name) for name in names}
        mismatches, misread = disagreements(found, outcome.record, schema, source)
    else:
        mismatches = ["the pages could not be read, so nothing was compared"]
    # the XML passed EN 16931's own arithmetic (parse.check_arithmetic): the schema's rules do not judge it
    return {**outcome.record, "rule_failures": [], "einvoice": "verified",
            "einvoice_error": None, "einvoice_mismatches": mismatches}, misread
