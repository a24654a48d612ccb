"""End to end: the CLI over generated PDFs, a PNG, a TIFF and a corrupt PDF, with the tiny VLM on real Ray."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner
from PIL import Image

from pipeline.cli import main
from pipeline.config.settings import ModelConfig
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.model.context import resolve_n_ctx
from pipeline.schema.compiled import load_schema
from pipeline.sink.dataset import manifests, read_table

from .conftest import INVOICE_SCHEMA


@pytest.fixture(scope="module")
def run_output(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path, tiny_vlm: TinyVLM,
               ray_local: None) -> tuple[Path, Path]:
    inputs = tmp_path_factory.mktemp("inputs")
    for f in sample_dir.iterdir():
        if f.suffix in (".pdf", ".png"):
            shutil.copy(f, inputs / f.name)
    (inputs / "broken.pdf").write_bytes(b"%PDF-1.7\nthis is not really a pdf\n%%EOF")
    (inputs / "notes.txt").write_text("not an invoice")  # skipped inside folders
    frames = [Image.new("RGB", (300, 400), c) for c in ("white", "gray")]
    frames[0].save(inputs / "two-frames.tiff", save_all=True, append_images=frames[1:])
    out = tmp_path_factory.mktemp("out") / "run"
    result = CliRunner().invoke(main, [
        "run", "--schema", str(INVOICE_SCHEMA), str(inputs), "--output", str(out),
        "--model", str(tiny_vlm.model), "--mmproj", str(tiny_vlm.mmproj), "--workers", "2",
        "--threads", "1", "--max-tokens", "1024", "--review-below", "0.99",
    ])
    assert result.exit_code == 0, result.output
    assert "errors" in result.output and "pages" in result.output
    assert "greedy" in " ".join(result.output.split()), result.output  # the run says where its seconds went
    return inputs, out


def _expected_pages(inputs: Path) -> set[tuple[str, int]]:
    import pymupdf

    pages = set()
    for f in sorted(inputs.iterdir()):
        if f.suffix == ".pdf" and f.name != "broken.pdf":
            with pymupdf.open(f) as doc:
                pages |= {(str(f.resolve()), n) for n in range(1, doc.page_count + 1)}
        elif f.suffix == ".png":
            pages.add((str(f.resolve()), 1))
        elif f.suffix == ".tiff":
            pages |= {(str(f.resolve()), 1), (str(f.resolve()), 2)}
    return pages


def test_every_page_exactly_once_with_provenance(run_output: tuple[Path, Path]) -> None:
    inputs, out = run_output
    table = read_table(out, "pages")
    rows = table.to_pylist()
    ok_keys = [(r["source_path"], r["page_number"]) for r in rows if r["page_number"] is not None]
    assert len(ok_keys) == len(set(ok_keys)), "a page was written twice"
    assert set(ok_keys) == _expected_pages(inputs)
    broken = [r for r in rows if r["source_path"].endswith("broken.pdf")]
    assert len(broken) == 1 and broken[0]["status"] == "error"
    assert broken[0]["error"].startswith("open_error")
    assert not any(r["source_path"].endswith(".txt") for r in rows)
    run_ids = {r["run_id"] for r in rows}
    assert len(run_ids) == 1
    for r in rows:
        assert len(r["source_sha256"]) == 64
        assert r["model_name"] == "tiny-llama.gguf" and len(r["model_sha256"]) == 64
        assert r["prompt_version"] and r["created_at"] is not None
        assert r["status"] in ("ok", "error")
        if r["status"] == "ok":
            assert r["error"] is None and r["latency_ms"] > 0 and r["page_count"] >= 1
            assert r["text_source"] == "image"
        assert r["dropped_rows"] >= 0 and isinstance(r["normalize_nulls"], (list, type(None)))


def test_one_document_row_per_file(run_output: tuple[Path, Path]) -> None:
    inputs, out = run_output
    docs = read_table(out, "documents").to_pylist()
    sources = [d["source_path"] for d in docs]
    expected = {str(f.resolve()) for f in inputs.iterdir() if f.suffix in (".pdf", ".png", ".tiff")}
    assert sorted(sources) == sorted(expected)
    by_name = {Path(d["source_path"]).name: d for d in docs}
    assert all(isinstance(d["rule_failures"], list) for d in docs if d["status"] == "ok")
    assert by_name["broken.pdf"]["status"] == "error" and by_name["broken.pdf"]["pages_ok"] == 0
    multipage = by_name["multipage-001.pdf"]
    assert multipage["page_count"] == 2 and multipage["pages_ok"] + multipage["pages_error"] == 2
    assert by_name["two-frames.tiff"]["page_count"] == 2
    compiled = load_schema(INVOICE_SCHEMA)
    fields = list(compiled.raw["properties"])
    for d in docs:
        if d["status"] == "ok" and d["document_kind"] != "blank":  # a blank document has no record at all
            record = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in d.items() if k in fields}
            assert compiled.errors(record) == []
    read = [d for d in docs if d["status"] == "ok" and d["document_kind"] != "blank"]
    for d in read:  # each value outside the rows has a probability (the fitted weights, rules/calibration.json)
        probability = dict(d["field_probability"] or [])
        assert probability and all(0 < p < 1 for p in probability.values())
        assert "line_items[0].amount" not in probability
        assert d["min_probability"] == min(probability.values())
        unsure = [r for r in d["review_reasons"] if r.startswith("unsure")]  # --review-below 0.99
        assert bool(unsure) == (d["min_probability"] < 0.99) and (not unsure or d["needs_review"])
    blank = by_name["two-frames.tiff"]  # a white and a grey frame: blank pages, no model call, no values
    assert blank["document_kind"] == "blank" and blank["total_amount"] is None and not blank["needs_review"]


def test_ok_records_are_typed_and_valid(run_output: tuple[Path, Path]) -> None:
    _, out = run_output
    table = read_table(out, "pages")
    schema = table.schema
    assert schema.field("issue_date").type == pa.date32()
    assert schema.field("total_amount").type == pa.float64()
    assert pa.types.is_struct(schema.field("seller").type)
    assert pa.types.is_list(schema.field("line_items").type)
    assert schema.field("page_number").type == pa.int32()
    compiled = load_schema(INVOICE_SCHEMA)
    ok = [r for r in table.to_pylist() if r["status"] == "ok" and r["page_kind"] != "blank"]  # blank: no record
    assert len(ok) >= 7  # every page a model read: the tiny model's grammar-constrained answers always validate
    fields = list(json.loads(INVOICE_SCHEMA.read_text())["properties"])
    for r in ok:
        record = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.items() if k in fields}
        assert compiled.errors(record) == [], record


def _pages(out: Path) -> str:
    return f"read_parquet('{out}/pages/**/*.parquet', hive_partitioning=true)"


def test_duckdb_reads_typed_columns(run_output: tuple[Path, Path]) -> None:
    _, out = run_output
    con = duckdb.connect()
    types = dict(con.execute(
        f"select column_name, column_type from (describe select * from {_pages(out)})"
    ).fetchall())
    assert types["issue_date"] == "DATE"
    assert types["total_amount"] == "DOUBLE"
    assert types["seller"].startswith("STRUCT")
    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    n_ok, n_err = con.execute(
        f"select count(*) filter (status = 'ok'), count(*) filter (status = 'error') "
        f"from {_pages(out)}").fetchone()
    assert n_err == 1 and n_ok >= 8
    seller_names = con.execute(
        f"select seller.name from {_pages(out)} where status = 'ok'").fetchall()
    assert all(isinstance(name, (str, type(None))) for (name,) in seller_names)


def test_manifest_matches_the_parquet(run_output: tuple[Path, Path]) -> None:
    _, out = run_output
    manifest = manifests(out)[-1]
    rows = read_table(out, "pages").num_rows
    assert manifest["counts"]["pages"] == rows
    assert sum(manifest["counts"]["documents"].values()) == read_table(out, "documents").num_rows
    assert manifest["counts"]["ok"] + manifest["counts"]["error"] == rows
    assert manifest["counts"]["error"] == 1
    assert manifest["model"]["chat_handler"] == "mtmd"
    assert len(manifest["model"]["sha256"]) == 64
    assert manifest["config"]["workers"] == 2
    # --n-ctx auto was sized once in the driver, for the tiny model, the schema and --max-tokens 1024
    model = ModelConfig(path=Path(manifest["model"]["path"]), mmproj=Path(manifest["model"]["mmproj"]),
                        max_tokens=1024)
    assert manifest["config"]["model"]["n_ctx"] == resolve_n_ctx(model, load_schema(INVOICE_SCHEMA).raw, True,
                                                                 manifest["config"]["max_pixels"], "mtmd")
    assert manifest["versions"]["llama_cpp_python"] != "not installed"
    assert not list(out.glob("**/.*tmp*")), "temporary files left behind"
    # what the resolve step decided, in one place
    resolved = manifest["resolved"]
    assert resolved["workers"] == 2 and resolved["threads"] >= 1 and resolved["chat_handler"] == "mtmd"
    assert resolved["n_ctx"] == manifest["config"]["model"]["n_ctx"] and resolved["backend"] == "vlm"
    # every fallback is counted, and the pages say which ones they took
    traces = manifest["traces"]
    pages = read_table(out, "pages").to_pylist()
    assert traces["pages_fallback"] == sum(p["fallback_reason"] is not None for p in pages)
    assert sum(traces["normalize_nulls"].values()) == sum(len(p["normalize_nulls"] or []) for p in pages)
    assert traces["pages_per_worker"] == 2
    # where the seconds and tokens went, summed from the pages' own columns
    work = manifest["work"]
    answered = [p for p in pages if p["attempts"]]
    assert work["pages_model"] == len(answered) and work["samples"] == sum(p["samples"] for p in answered)
    assert work["answer_tokens"] == sum(p["completion_tokens"] for p in answered) > 0
    assert 0 < work["prompt_tokens_evaluated"] <= work["prompt_tokens"]
    assert work["seconds"]["model"] >= work["seconds"]["decode"] > 0 and work["seconds"]["read"] > 0
    assert work["greedy_only"] == sum(p["sample_reason"] == "greedy answer settled" for p in pages)
    assert all(p["sample_reason"] for p in answered)  # adaptive (the default): each page says why it got its samples
    assert any(p["certainty"] for p in answered)  # the greedy answer's probability per value, read from llama.cpp


def test_show_prints_records(run_output: tuple[Path, Path]) -> None:
    _, out = run_output
    result = CliRunner().invoke(main, ["show", str(out), "--limit", "3"])
    assert result.exit_code == 0, result.output
    rows = read_table(out, "documents").num_rows
    assert "status" in result.output and f"({rows} rows)" in result.output
