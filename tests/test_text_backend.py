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


def test_a_documents_pages_are_read_together_and_every_value_is_looked_up(
        tmp_path: Path, sample_dir: Path, tiny_vlm: TinyVLM, ray_local: None) -> None:
    """--read-pages: one request for the two pages of an invoice, a row for each page; the values
    (noise from the tiny model) looked up on the pages, typed in Parquet."""
    import pyarrow as pa

    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(sample_dir / "multipage-001.pdf", inputs)
    for read_pages, out in (("4", tmp_path / "together"), ("1", tmp_path / "apart")):
        result = CliRunner().invoke(main, [
            "run", "--schema", str(INVOICE_SCHEMA), str(inputs), "-o", str(out), "--model", str(tiny_vlm.model),
            "--backend", "text", "--max-tokens", "512", "--samples", "1", "--read-pages", read_pages])
        # the tiny model's tokenizer can make two pages' text outgrow the context: both pages are then
        # error rows, and a run with no page ok exits 1
        assert result.exit_code == 0 or "no page succeeded" in result.output, result.output
    together = sorted(read_table(tmp_path / "together", "pages").to_pylist(), key=lambda p: p["page_number"])
    assert [(p["page_number"], p["pages_read"], p["read_with"]) for p in together] == [(1, 2, None), (2, 1, 1)]
    assert together[1]["status"] == together[0]["status"] and together[1]["completion_tokens"] == 0
    apart = read_table(tmp_path / "apart", "pages").to_pylist()
    assert sorted((p["page_number"], p["pages_read"], p["read_with"]) for p in apart) == [(1, 1, None), (2, 1, None)]
    documents = read_table(tmp_path / "together", "documents")
    assert documents.schema.field("field_sources").type.item_type == pa.struct([
        pa.field("page", pa.int32()), pa.field("bbox", pa.list_(pa.float64())), pa.field("text", pa.string()),
        pa.field("match", pa.string())])
    doc = documents.to_pylist()[0]
    assert doc["pages_ok"] + doc["pages_error"] == 2
    sources = dict(doc["field_sources"] or [])
    assert all(s["match"] in ("exact", "normalised", "fuzzy", "none") and s["page"] in (1, 2) for s in sources.values())
    assert doc["ungrounded_fields"] == (sorted(p for p, s in sources.items() if s["match"] == "none")
                                        if doc["status"] != "error" else None), doc["error"]


def test_ocr_runs_on_the_workers_threads(sample_dir: Path) -> None:
    """onnxruntime's threads spin like llama.cpp's: OCR keeps to the worker's --threads, and reads the same."""
    from pipeline.render.textlayer import OcrEngine

    png = (sample_dir / "photo-001.png").read_bytes()
    one, default = OcrEngine(1), OcrEngine()
    words = one.words(png)
    assert words and sorted(w[4] for w in words) == sorted(w[4] for w in default.words(png))
    options = one._engine.text_det.session.session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1


def test_ocr_line_orientation_is_a_setting_that_reaches_the_engine_and_the_settings_key() -> None:
    """RapidOCR's upside-down line classifier: --no-ocr-line-orientation turns it off in the engine a
    worker builds, and documents read with it on are redone (the key changes)."""
    from pipeline.config.settings import ModelConfig, RunConfig
    from pipeline.render.textlayer import OcrEngine
    from pipeline.run.page import PageSteps
    from pipeline.screen.read import LazyOcr

    assert OcrEngine(1)._engine.use_cls and not OcrEngine(1, False)._engine.use_cls
    model = ModelConfig(path=Path("m.gguf"))
    cfgs = [RunConfig(schema_path=INVOICE_SCHEMA, inputs=(Path("x.pdf"),), output=Path("out"), model=model,
                      ocr_line_orientation=on) for on in (True, False)]
    assert cfgs[0].settings_key("s", "m", None) != cfgs[1].settings_key("s", "m", None)
    ocr = PageSteps.from_config(cfgs[1], {}, None).ocr
    assert isinstance(ocr, LazyOcr) and ocr.line_orientation is False
