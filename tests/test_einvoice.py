"""E-invoices read exactly from their XML: every format, hostile files, the three modes, free ground truth."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.consensus.compare import differences
from pipeline.devtools.einvoices import generate_einvoices, hostile, zugferd_v1
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.einvoice.documents import inspect, stated
from pipeline.errors import SchemaError
from pipeline.schema.compiled import compile_schema, load_schema
from pipeline.sink.dataset import manifests, read_table

from .conftest import INVOICE_SCHEMA

SCHEMA = load_schema(INVOICE_SCHEMA)


@pytest.fixture(scope="module")
def einvoices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate_einvoices(tmp_path_factory.mktemp("einvoices"))


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return hostile(tmp_path_factory.mktemp("hostile"))


def _truth(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.with_suffix(".json").read_text()))


def test_every_format_is_read_exactly(einvoices: dict[str, Path]) -> None:
    flavors = {}
    for name, path in einvoices.items():
        outcome = inspect(path, SCHEMA)
        assert outcome is not None and outcome.error is None and outcome.record is not None, (name, outcome)
        assert differences(outcome.record, _truth(path), SCHEMA.raw, SCHEMA.raw) == [], name
        assert not SCHEMA.errors(outcome.record)
        flavors[name] = (outcome.flavor, outcome.source)
    assert flavors == {
        "facturx-en16931": ("factur-x", "factur-x.xml"), "facturx-credit-note": ("factur-x", "factur-x.xml"),
        "xrechnung-cii": ("factur-x", "xrechnung-cii.xml"), "xrechnung-attached": ("factur-x", "xrechnung.xml"),
        "peppol-ubl": ("ubl-2.1-invoice", "peppol-ubl.xml"), "zugferd-v1": ("zugferd", "ZUGFeRD-invoice.xml")}


def test_the_zugferd_v1_template_is_valid_against_its_xsd(einvoices: dict[str, Path]) -> None:
    from facturx import xml_check_xsd

    assert xml_check_xsd(zugferd_v1(_truth(einvoices["zugferd-v1"])), flavor="zugferd")


def test_credit_notes_keep_the_sign_the_schema_documents(einvoices: dict[str, Path]) -> None:
    path = einvoices["facturx-credit-note"]
    as_stated = inspect(path, SCHEMA)
    assert as_stated is not None and as_stated.credit_note and as_stated.record is not None
    assert as_stated.record["total_amount"] > 0  # EN 16931 credit notes carry positive amounts
    negative = compile_schema({**SCHEMA.raw, "x-einvoice-credit-notes": "negative"})
    flipped = inspect(path, negative)
    assert flipped is not None and flipped.record is not None
    assert flipped.record["total_amount"] == -as_stated.record["total_amount"]
    assert flipped.record["line_items"][0]["amount"] == -as_stated.record["line_items"][0]["amount"]
    assert flipped.record["line_items"][0]["quantity"] == as_stated.record["line_items"][0]["quantity"]


def test_a_profile_without_lines_leaves_them_empty_not_invented(einvoices: dict[str, Path], tmp_path: Path) -> None:
    from pipeline.devtools.einvoices import cii, terms

    inv = _truth(einvoices["facturx-en16931"])
    basic_wl = {k: v for k, v in terms(inv).items() if k != "BG-25"}  # BASIC WL has no lines
    (tmp_path / "basic-wl.xml").write_bytes(cii({**basic_wl, "BT-24": "urn:factur-x.eu:1p0:basicwl"},
                                                level="basicwl"))
    outcome = inspect(tmp_path / "basic-wl.xml", SCHEMA)
    assert outcome is not None and outcome.record is not None, outcome
    assert outcome.record["line_items"] == []
    assert outcome.record["total_amount"] == inv["total_amount"] and outcome.record["invoice_number"]


def test_xrechnung_says_it_is_one(einvoices: dict[str, Path]) -> None:
    from pipeline.devtools.einvoices import XRECHNUNG_CII

    assert XRECHNUNG_CII.encode() in einvoices["xrechnung-cii"].read_bytes()


@pytest.mark.parametrize("name, reason", [
    ("xxe.xml", "DOCTYPE"), ("billion-laughs.xml", "DOCTYPE"), ("huge.xml", "larger than"),
    ("not-well-formed.xml", "not well-formed"), ("wrong-namespace.xml", "wrong namespace"),
    ("bad-arithmetic.xml", "arithmetic"), ("schema-invalid.xml", "schema-invalid"),
    ("attachment-bomb.pdf", "attachment bomb"), ("deep.xml", "nested deeper"),
])
def test_hostile_files_are_refused_quickly_with_a_reason(hostile_files: dict[str, Path], name: str,
                                                          reason: str) -> None:
    started = time.perf_counter()
    outcome = inspect(hostile_files[name], SCHEMA)
    assert outcome is not None and outcome.record is None and reason in (outcome.error or ""), outcome
    assert time.perf_counter() - started < 5


def test_an_external_entity_is_never_read(tmp_path: Path) -> None:
    """Even with its DOCTYPE check gone, the parser would not fetch the entity: no file is read."""
    from lxml import etree

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    payload = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
               "<r>&x;</r>").encode()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    assert b"TOP-SECRET-MARKER" not in etree.tostring(etree.fromstring(payload, parser))
    outcome_path = tmp_path / "xxe.xml"
    outcome_path.write_bytes(payload)
    outcome = inspect(outcome_path, SCHEMA)
    assert outcome is not None and "TOP-SECRET-MARKER" not in str(outcome)


def test_annotations_are_checked_and_a_schema_without_them_reads_no_xml(einvoices: dict[str, Path]) -> None:
    from pipeline.einvoice.documents import check_schema

    bad = compile_schema({"type": "object", "properties": {"n": {"type": "string", "x-einvoice": "number"}}})
    with pytest.raises(SchemaError, match="not an EN 16931 term"):
        check_schema(bad)
    plain = compile_schema({"type": "object", "properties": {"n": {"type": "string"}}})
    assert inspect(einvoices["facturx-en16931"], plain) is None


def _verify(path: Path, page_record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The document and traces the assembler makes when the model read ``page_record`` off ``path``."""
    from pipeline.einvoice.documents import XmlOutcome
    from pipeline.merge.assemble import DocumentAssembler
    from pipeline.results import PageResult

    class Writer:
        def add_document(self, document: dict[str, Any], pages: list[dict[str, Any]]) -> None:
            self.document = document

    xml = inspect(path, SCHEMA)
    assert xml is not None and xml.record is not None
    key = (str(path), "f" * 64)
    writer = Writer()
    assembler = DocumentAssembler(SCHEMA, {}, writer, {key: XmlOutcome(xml.record, None)})  # type: ignore[arg-type]
    assembler.add(PageResult(key[0], key[1], 1, 1, status="ok", record=page_record))
    return writer.document, assembler.traces


def test_verify_flags_a_page_that_shows_other_values_than_its_xml(einvoices: dict[str, Path],
                                                                  tmp_path: Path) -> None:
    from pipeline.devtools.einvoices import tampered

    honest = einvoices["facturx-en16931"]
    xml = _truth(honest)
    document, traces = _verify(honest, {**xml, "issue_date": xml["issue_date"]})
    assert document["einvoice"] == "verified" and document["einvoice_mismatches"] == []
    assert not document["needs_review"]
    # the model misread an honest page: the page shows the XML's values, so nothing is flagged
    misread = {**xml, "total_amount": 0.01, "seller": {**xml["seller"], "name": "Evil Corp"}}
    document, traces = _verify(honest, misread)
    assert document["einvoice_mismatches"] == [] and traces["einvoice_misreads"] == 2
    assert document["total_amount"] == xml["total_amount"]  # the document keeps the XML's values
    # a page that shows another seller and total than its XML: flagged, with both values
    forged = tampered(tmp_path)
    stated = _truth(forged)
    shown = {**stated, "total_amount": round(stated["total_amount"] + 1000, 2),
             "seller": {**stated["seller"], "name": "Evil Payments Ltd"}}
    document, _ = _verify(forged, shown)
    assert document["needs_review"] and document["total_amount"] == stated["total_amount"]
    assert sorted(m.split(":")[0] for m in document["einvoice_mismatches"]) == ["seller.name", "total_amount"]
    assert f"xml={stated['total_amount']!r}" in " ".join(document["einvoice_mismatches"])


def _run(tiny_vlm: TinyVLM, inputs: Path, out: Path, *extra: str) -> Any:
    return CliRunner().invoke(main, [
        "run", "--schema", str(INVOICE_SCHEMA), str(inputs), "--output", str(out), "--model", str(tiny_vlm.model),
        "--mmproj", str(tiny_vlm.mmproj), "--workers", "1", "--threads", "2", "--samples", "1",
        "--max-tokens", "256", *extra])


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory: pytest.TempPathFactory, einvoices: dict[str, Path],
                 hostile_files: dict[str, Path]) -> Path:
    folder = tmp_path_factory.mktemp("mixed")
    for path in einvoices.values():
        shutil.copy(path, folder / path.name)
    for name in ("xxe.xml", "bad-arithmetic.xml", "attachment-bomb.pdf"):
        shutil.copy(hostile_files[name], folder / name)
    return folder


def test_use_reads_the_xml_without_the_model_and_hostile_files_are_rows(
        tiny_vlm: TinyVLM, mixed_folder: Path, einvoices: dict[str, Path], tmp_path: Path, ray_local: None) -> None:
    out = tmp_path / "out"
    result = _run(tiny_vlm, mixed_folder, out)
    assert result.exit_code == 0, result.output
    docs = {Path(d["source_path"]).name: d for d in read_table(out, "documents").to_pylist()}
    pages = read_table(out, "pages").to_pylist()
    assert len(docs) == 9
    for name in ("facturx-en16931.pdf", "facturx-credit-note.pdf", "xrechnung-cii.xml", "xrechnung-attached.pdf",
                 "peppol-ubl.xml", "zugferd-v1.pdf"):
        doc = docs[name]
        assert doc["status"] == "ok" and doc["einvoice"] == "xml" and not doc["needs_review"], name
        record = {k: doc[k] for k in SCHEMA.raw["properties"]}
        record["issue_date"] = record["issue_date"].isoformat()
        record["due_date"] = record["due_date"].isoformat() if record["due_date"] else None
        assert differences(record, _truth(einvoices[Path(name).stem]), SCHEMA.raw, SCHEMA.raw) == [], name
        first = next(p for p in pages if p["source_path"] == doc["source_path"] and p["page_number"] == 1)
        assert first["text_source"] == "xml" and first["latency_ms"] == 0 and first["samples"] == 0
    for name in ("xxe.xml", "bad-arithmetic.xml"):  # an XML input has no page for a model: an error row
        assert docs[name]["status"] == "error" and "einvoice_error" in docs[name]["error"], docs[name]
    bomb = docs["attachment-bomb.pdf"]  # its page goes to the model, and the row says why
    assert bomb["einvoice"] is None and "attachment bomb" in bomb["einvoice_error"]
    bomb_pages = [p for p in pages if p["source_path"] == bomb["source_path"]]
    assert bomb_pages and all("attachment bomb" in (p["einvoice_error"] or "") for p in bomb_pages)
    assert all(p["text_source"] == "image" for p in bomb_pages if p["status"] == "ok")
    assert manifests(out)[-1]["config"]["einvoice"] == "use"


def test_verify_runs_the_model_and_keeps_the_xml_values(tiny_vlm: TinyVLM, tmp_path: Path,
                                                         ray_local: None) -> None:
    """End to end with the tiny random model: it reads noise that no page prints, so its differences
    are misreadings (counted), not flags; telling a forged page is the assembler's test above."""
    from pipeline.devtools.einvoices import tampered

    folder = tmp_path / "in"
    forged = tampered(folder)
    out = tmp_path / "out"
    result = _run(tiny_vlm, folder, out, "--einvoice", "verify")
    assert result.exit_code == 0, result.output
    doc = read_table(out, "documents").to_pylist()[0]
    page = read_table(out, "pages").to_pylist()[0]
    assert page["text_source"] == "image" and page["status"] == "ok"  # the model read the page
    stated = _truth(forged)
    assert doc["einvoice"] == "verified" and doc["invoice_number"] == stated["invoice_number"]
    assert doc["total_amount"] == stated["total_amount"]  # the XML's values, whatever the model read
    assert manifests(out)[-1]["traces"]["einvoice_misreads"] >= 1


def test_free_ground_truth_scores_the_model_path_against_the_xml(
        tiny_vlm: TinyVLM, einvoices: dict[str, Path], tmp_path: Path, ray_local: None) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("facturx-en16931", "xrechnung-attached"):
        shutil.copy(einvoices[name], folder)
    out = tmp_path / "out"
    assert _run(tiny_vlm, folder, out, "--einvoice", "ignore").exit_code == 0
    result = CliRunner().invoke(main, ["eval", "--truth", "einvoice", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval.json").read_text())
    assert report["documents"] == 2 and report["documents_from_xml"] == 0
    stated_fields = set(stated(_truth(einvoices["facturx-en16931"])))
    assert stated_fields <= {f.split(".")[0] for f in report["fields"]}
    # a run that took its records from the XML has nothing left to measure, and says so
    used = tmp_path / "used"
    assert _run(tiny_vlm, folder, used).exit_code == 0
    result = CliRunner().invoke(main, ["eval", "--truth", "einvoice", str(used)])
    assert result.exit_code == 2 and "--einvoice ignore" in result.output
