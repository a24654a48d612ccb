"""The text backend: text layer in reading order, OCR for scans and images, real llama.cpp."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.eval.score import evaluate
from pipeline.model import registry as models
from pipeline.sink.dataset import manifests, read_table

from .conftest import INVOICE_SCHEMA


def test_text_layer_for_pdfs_and_ocr_for_scans(tmp_path: Path, sample_dir: Path, tiny_vlm: TinyVLM,
                                               ray_local: None) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("invoice-001-classic.pdf", "scanned-001.pdf", "photo-001.png"):
        shutil.copy(sample_dir / name, inputs / name)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "run", "--schema", str(INVOICE_SCHEMA), str(inputs), "-o", str(out), "--model", str(tiny_vlm.model),
        "--backend", "text", "--max-tokens", "1024"])
    assert result.exit_code == 0, result.output
    pages = {Path(r["source_path"]).name: r for r in read_table(out, "pages").to_pylist()}
    assert pages["invoice-001-classic.pdf"]["text_source"] == "layer"
    assert pages["scanned-001.pdf"]["text_source"] == "ocr"
    assert pages["photo-001.png"]["text_source"] == "ocr"
    assert all(p["status"] == "ok" for p in pages.values())


def test_auto_backend_is_text_without_mmproj(tmp_path: Path, sample_dir: Path, tiny_vlm: TinyVLM,
                                             ray_local: None) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "run", "--schema", str(INVOICE_SCHEMA), str(sample_dir / "invoice-002-modern.pdf"), "-o", str(out),
        "--model", str(tiny_vlm.model), "--max-tokens", "1024"])
    assert result.exit_code == 0, result.output

    assert manifests(out)[-1]["model"]["backend"] == "text"


@pytest.mark.realmodel
def test_real_small_model_extracts_sample_invoices(tmp_path: Path, sample_dir: Path, ray_local: None) -> None:
    if models.installed("qwen2.5-coder-0.5b") is None:
        pytest.skip("qwen2.5-coder-0.5b not installed: 'extract models pull qwen2.5-coder-0.5b'")
    inputs = tmp_path / "in"
    inputs.mkdir()
    for stem in ("invoice-001-classic", "invoice-003-compact"):
        shutil.copy(sample_dir / f"{stem}.pdf", inputs)
        shutil.copy(sample_dir / f"{stem}.json", inputs)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "run", "--schema", str(INVOICE_SCHEMA), str(inputs), "-o", str(out), "--model", "qwen2.5-coder-0.5b",
        "--workers", "2", "--threads", "1"])
    assert result.exit_code == 0, result.output
    report = evaluate(inputs, out)
    assert report.documents == 2 and report.documents_missing == 0
    header = [report.fields[f] for f in ("invoice_number", "issue_date", "total_amount")]
    assert sum(c.tp for c in header) >= 4, {f: vars(c) for f, c in report.fields.items()}
    assert report.overall.f1 >= 0.6, report.to_json()["overall"]
