"""--samples K end to end: per-field confidence, disputed fields and needs_review in both tables."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.schema.compiled import load_schema
from pipeline.schema.scope import open_disputes
from pipeline.sink.dataset import read_table

from .conftest import INVOICE_SCHEMA

SCHEMA = load_schema(INVOICE_SCHEMA).raw


def test_three_samples_per_page(tmp_path: Path, sample_dir: Path, tiny_vlm: TinyVLM, ray_local: None) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("invoice-001-classic.pdf", "multipage-001.pdf"):
        shutil.copy(sample_dir / name, inputs / name)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "run", "--schema", str(INVOICE_SCHEMA), str(inputs), "-o", str(out), "--model", str(tiny_vlm.model),
        "--mmproj", str(tiny_vlm.mmproj), "--samples", "3", "--sampling", "fixed", "--max-tokens", "1024"])
    assert result.exit_code == 0, result.output
    pages = read_table(out, "pages")
    assert pages.schema.field("field_confidence").type == pa.map_(pa.string(), pa.float64())
    for page in pages.to_pylist():
        assert page["status"] == "ok" and page["samples"] == 3
        confidence = dict(page["field_confidence"])
        assert confidence and all(0 < c <= 1 for c in confidence.values())
        assert page["disputed_fields"] == sorted(k for k, c in confidence.items() if c < 1)
        open_ = open_disputes(confidence, SCHEMA, page["page_number"], page["page_count"])
        # page 1 of 2 leaves its totals to page 2; a page flagged says why (a disagreement, or a doubt of its own)
        assert page["needs_review"] == bool(page["review_reasons"]) and (page["needs_review"] or not open_)
        assert set(open_) <= set(page["disputed_fields"])
        assert 0 < page["min_confidence"] <= page["agreement"] <= 1
    docs = {Path(d["source_path"]).name: d for d in read_table(out, "documents").to_pylist()}
    multi = docs["multipage-001.pdf"]
    assert multi["samples"] == 3
    assert all(f.startswith(("p1:", "p2:")) for f in multi["disputed_fields"])
    multi_pages = [p for p in pages.to_pylist() if p["source_sha256"] == multi["source_sha256"]]
    if any(p["needs_review"] for p in multi_pages) or multi["rule_failures"]:
        assert multi["needs_review"]


def test_dual_view_reads_the_text_layer_with_the_same_vlm(tmp_path: Path, sample_dir: Path, tiny_vlm: TinyVLM,
                                                          ray_local: None) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(sample_dir / "invoice-001-classic.pdf", inputs)
    shutil.copy(sample_dir / "photo-001.png", inputs)  # no text layer: the text view reads its OCR
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "run", "--schema", str(INVOICE_SCHEMA), str(inputs), "-o", str(out), "--model", str(tiny_vlm.model),
        "--mmproj", str(tiny_vlm.mmproj), "--samples", "2", "--dual-view", "--max-tokens", "1024"])
    assert result.exit_code == 0, result.output
    pages = {Path(p["source_path"]).name: p for p in read_table(out, "pages").to_pylist()}
    pdf = pages["invoice-001-classic.pdf"]
    assert pdf["text_source"] == "image+layer" and pdf["status"] == "ok"
    assert pdf["samples"] == 3 and pdf["attempts"] == 3  # two image samples + the text view, voted
    assert dict(pdf["field_confidence"]) and pdf["disputed_fields"] == sorted(
        k for k, c in dict(pdf["field_confidence"]).items() if c < 1)
    photo = pages["photo-001.png"]
    assert photo["text_source"] == "image+ocr" and photo["samples"] == 3


def test_dual_view_needs_the_vlm(tmp_path: Path, tiny_vlm: TinyVLM) -> None:
    result = CliRunner().invoke(main, [
        "run", "--schema", str(INVOICE_SCHEMA), str(tmp_path), "-o", str(tmp_path / "out"),
        "--model", str(tiny_vlm.model), "--backend", "text", "--dual-view"])
    assert result.exit_code == 2 and "dual view needs the VLM backend" in result.output
