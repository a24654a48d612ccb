"""Nightly-job behaviour in process: incremental by content hash, --force superseding, repair
of half-committed parts, the lock, job files and exit codes (real llama.cpp, real Ray)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

from pipeline.cli import main
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.sink.dataset import manifests, read_table, table_files
from pipeline.sink.parquet import repair, rows_to_table, write_parquet_atomic
from pipeline.sink.state import RunLock, StateStore

from .conftest import INVOICE_SCHEMA


@pytest.fixture()
def inputs(tmp_path: Path, sample_dir: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("invoice-001-classic.pdf", "invoice-002-modern.pdf", "multipage-001.pdf"):
        shutil.copy(sample_dir / name, folder / name)
    return folder


def _run(tiny_vlm: TinyVLM, inputs: Path, out: Path, *extra: str) -> Result:
    return CliRunner().invoke(main, [
        "run", "--schema", str(INVOICE_SCHEMA), str(inputs), "--output", str(out), "--model", str(tiny_vlm.model),
        "--mmproj", str(tiny_vlm.mmproj), "--workers", "2", "--threads", "1", "--samples", "1",
        "--max-tokens", "512", "--commit-every", "1", *extra])


def _summary(result: Result) -> dict[str, str]:
    line = next(ln for ln in result.output.splitlines() if ln.startswith("extract: "))
    return dict(part.split("=", 1) for part in line.removeprefix("extract: ").split())


def _assert_exactly_once(out: Path) -> None:
    docs = read_table(out, "documents").to_pylist()
    shas = [d["source_sha256"] for d in docs]
    assert len(shas) == len(set(shas)), "a document was written twice"
    pages = [(p["source_sha256"], p["page_number"]) for p in read_table(out, "pages").to_pylist()]
    assert len(pages) == len(set(pages)), "a page was written twice"
    assert not list(out.glob("**/.*.tmp-*")), "temporary files left behind"


def test_rerun_is_incremental_by_content(tiny_vlm: TinyVLM, inputs: Path, tmp_path: Path, sample_dir: Path,
                                         ray_local: None) -> None:
    out = tmp_path / "out"
    first = _run(tiny_vlm, inputs, out)
    assert first.exit_code == 0, first.output
    assert _summary(first)["pages"] == "4" and _summary(first)["status"] == "ok"
    files_before = sorted(p.name for p in out.glob("*/run_date=*/*.parquet"))
    assert len(table_files(out, "documents")) == 3  # --commit-every 1: one part per document

    again = _run(tiny_vlm, inputs, out)  # nothing new: no model calls, no rows
    assert again.exit_code == 0, again.output
    assert _summary(again)["pages"] == "0" and _summary(again)["skipped"] == "3"
    assert sorted(p.name for p in out.glob("*/run_date=*/*.parquet")) == files_before
    assert manifests(out)[-1]["counts"]["pages"] == 0

    # A renamed copy is the same document; a file whose bytes change is redone, alone.
    shutil.copy(inputs / "invoice-001-classic.pdf", inputs / "copy-of-001.pdf")
    shutil.copy(sample_dir / "invoice-003-compact.pdf", inputs / "invoice-002-modern.pdf")
    changed = _run(tiny_vlm, inputs, out)
    assert changed.exit_code == 0, changed.output
    s = _summary(changed)
    assert (s["pages"], s["documents"]) == ("1", "1"), changed.output
    assert manifests(out)[-1]["skipped"] == {"done": 2, "duplicate": 1, "errors_kept": 0}
    _assert_exactly_once(out)
    assert read_table(out, "documents").num_rows == 4  # the old version of 002 stays: other bytes


def test_a_changed_prompt_redoes_the_documents(tiny_vlm: TinyVLM, inputs: Path, tmp_path: Path,
                                               ray_local: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prompt is part of what makes a document done, derived from what the model is given."""
    from pipeline.model import prompt

    out = tmp_path / "out"
    first = _run(tiny_vlm, inputs, out)
    assert first.exit_code == 0, first.output
    before = manifests(out)[-1]["resolved"]["prompt_version"]
    assert before == prompt.prompt_version() and before.startswith("prompt-")
    monkeypatch.setattr(prompt, "SYSTEM_PROMPT", prompt.SYSTEM_PROMPT + " Dates as printed.")
    assert prompt.prompt_version() != before
    again = _run(tiny_vlm, inputs, out)
    assert again.exit_code == 0, again.output
    assert _summary(again)["pages"] == "4", again.output  # every document redone under the new prompt
    rows = read_table(out, "documents").to_pylist()
    assert len(rows) == 3 and {r["prompt_version"] for r in rows} == {prompt.prompt_version()}  # old rows superseded


def test_force_supersedes_old_rows(tiny_vlm: TinyVLM, inputs: Path, tmp_path: Path, ray_local: None) -> None:
    out = tmp_path / "out"
    assert _run(tiny_vlm, inputs, out).exit_code == 0
    forced = _run(tiny_vlm, inputs, out, "--force")
    assert forced.exit_code == 0, forced.output
    assert _summary(forced)["pages"] == "4"
    _assert_exactly_once(out)
    docs = read_table(out, "documents").to_pylist()
    assert len(docs) == 3 and {d["run_id"] for d in docs} == {manifests(out)[-1]["run_id"]}
    con = duckdb.connect()
    (n,) = con.execute(f"select count(*) from read_parquet('{out}/documents/**/*.parquet', "
                       "hive_partitioning=true)").fetchone()
    assert n == 3
    (run_date,) = con.execute(f"select distinct run_date from read_parquet('{out}/pages/**/*.parquet', "
                              "hive_partitioning=true)").fetchone()
    assert str(run_date)[:4].isdigit()


def test_changed_settings_redo_and_errors_are_kept_unless_retried(tiny_vlm: TinyVLM, inputs: Path,
                                                                  tmp_path: Path, ray_local: None) -> None:
    out = tmp_path / "out"
    (inputs / "broken.pdf").write_bytes(b"%PDF-1.7\nnot a pdf\n%%EOF")
    first = _run(tiny_vlm, inputs, out, "--max-error-rate", "0.1")
    assert first.exit_code == 1, first.output  # 1 of 5 pages failed: above the threshold
    assert "status=FAILED" in first.output and "error rate" in first.output
    errors = read_table(out, "errors").to_pylist()
    assert len(errors) == 1 and errors[0]["error"].startswith("open_error")
    kept = _run(tiny_vlm, inputs, out)
    assert _summary(kept)["pages"] == "0" and manifests(out)[-1]["skipped"]["errors_kept"] == 1
    retried = _run(tiny_vlm, inputs, out, "--retry-errors")
    # the broken file is the only page retried, and fails again: a run with no page ok exits 1
    assert _summary(retried)["pages"] == "1" and retried.exit_code == 1
    assert manifests(out)[-1]["status"] == "failed"
    assert read_table(out, "errors").num_rows == 1  # the old error row was superseded by the new one
    redo = _run(tiny_vlm, inputs, out, "--dpi", "100")  # a setting that changes results: all redone
    assert _summary(redo)["pages"] == "5"
    _assert_exactly_once(out)


def test_repair_drops_a_part_written_but_not_marked(tmp_path: Path) -> None:
    from pipeline.schema.compiled import load_schema
    from pipeline.sink.parquet import documents_schema

    out = tmp_path / "out"
    store = StateStore(out)
    schema = documents_schema(load_schema(INVOICE_SCHEMA).raw)
    rel = "documents/run_date=2026-11-25/part-r1-00001.parquet"
    store.register_part("r1-00001", "r1", [rel])
    row = {"run_id": "r1", "source_path": "/a.pdf", "source_sha256": "a" * 64, "model_name": "m",
           "model_sha256": "m", "prompt_version": "p", "schema_sha256": "s", "status": "ok",
           "created_at": __import__("datetime").datetime.now()}
    write_parquet_atomic(out / rel, rows_to_table([row], schema))  # then the driver is killed
    (out / "documents" / "run_date=2026-11-25" / ".part-r1-00002.parquet.tmp-123").write_bytes(b"half")
    report = repair(out, store)
    assert report == {"parts_dropped": 1, "temp_files_removed": 1, "parts_rewritten": 0}
    assert not list((out / "documents").glob("**/*.parquet")) and store.done() == {}
    assert repair(out, store)["parts_dropped"] == 0  # idempotent


def test_lock_refuses_a_concurrent_run_and_takes_over_a_stale_one(tiny_vlm: TinyVLM, inputs: Path,
                                                                   tmp_path: Path, ray_local: None) -> None:
    out = tmp_path / "out"
    holder = RunLock(out)
    holder.acquire("other-run")
    try:
        refused = _run(tiny_vlm, inputs, out)
        assert refused.exit_code == 2 and "already writing" in refused.output and "other-run" in refused.output
    finally:
        holder.release()
    # A killed run leaves its details in the lock file but no lock: the next run goes on.
    (out / "_state" / "lock").write_text(json.dumps({"run_id": "killed", "pid": 999999}))
    taken = _run(tiny_vlm, inputs, out)
    assert taken.exit_code == 0, taken.output
    assert manifests(out)[-1]["state"]["previous_lock_holder"]["run_id"] == "killed"


def test_jobs_list_run_status(tiny_vlm: TinyVLM, inputs: Path, tmp_path: Path, ray_local: None,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "nightly.toml").write_text(f"""
inputs = ["{inputs}/*.pdf"]
schema = "{INVOICE_SCHEMA}"
output = "../job-out"
model = "{tiny_vlm.model}"
mmproj = "{tiny_vlm.mmproj}"
workers = 2
threads = 1
samples = 1
max_tokens = 512
max_error_rate = 0.0
""")
    (jobs / "typo.toml").write_text('inputs = ["x"]\nschema = "s.json"\noutput = "o"\nworkerz = 2\n')
    monkeypatch.setenv("EXTRACT_JOBS_DIR", str(jobs))
    runner = CliRunner()
    listed = runner.invoke(main, ["jobs", "list"])
    assert listed.exit_code == 0 and "nightly" in listed.output and "workerz" in listed.output
    bad = runner.invoke(main, ["jobs", "run", "typo"])
    assert bad.exit_code == 2 and "workerz: unknown setting" in bad.output
    missing = runner.invoke(main, ["jobs", "run", "nope"])
    assert missing.exit_code == 2 and "no job named 'nope'" in missing.output
    ran = runner.invoke(main, ["jobs", "run", "nightly"])
    assert ran.exit_code == 0, ran.output
    assert _summary(ran)["job"] == "nightly" and _summary(ran)["pages"] == "4"
    out = tmp_path / "job-out"  # relative to the job file's folder
    assert read_table(out, "documents").num_rows == 3
    status = runner.invoke(main, ["jobs", "status", "nightly", "--json"])
    data = json.loads(status.output)
    assert data["documents"] == {"ok": 3} and data["running"] is None
    assert data["last_run"]["counts"]["pages"] == 4


def test_the_example_job_file_validates() -> None:
    from pipeline.jobs.files import load_job

    from .conftest import ROOT

    job = load_job(str(ROOT / "jobs" / "invoices-nightly.toml"))
    assert job.name == "invoices-nightly" and job.options.max_error_rate == 0.05
    assert (job.base / job.options.schema_path).resolve() == INVOICE_SCHEMA.resolve()


def test_one_output_root_holds_one_record_shape(tmp_path: Path) -> None:
    from pipeline.errors import OutputError
    from pipeline.schema.compiled import compile_schema
    from pipeline.sink.output import record_shape

    def none() -> None:
        return None

    store = StateStore(tmp_path / "out")
    store.check_schema("shape-a", "a.json", none)
    store.register_part("r-1", "r", [])
    store.commit_part("r-1", "r", [{"source_sha256": "f" * 64, "source_path": "/x.pdf", "work_key": "k",
                                    "status": "ok"}])
    store.check_schema("shape-a", "a.json", none)  # same record columns: fine
    with pytest.raises(OutputError, match="another schema .other record columns.; use a new --output for b.json"):
        store.check_schema("shape-b", "b.json", none)
    # descriptions and annotations are not record columns: the same root takes the schema
    plain = {"type": "object", "properties": {"total": {"type": ["number", "null"]}}}
    annotated = {"type": "object", "description": "now with e-invoice terms",
                 "properties": {"total": {"type": ["number", "null"], "x-einvoice": "BT-112"}}}
    assert record_shape(compile_schema(plain).raw) == record_shape(compile_schema(annotated).raw)
    # a root from before record shapes were kept is checked against its committed columns
    legacy = StateStore(tmp_path / "legacy")
    legacy.register_part("r-1", "r", [])
    legacy.commit_part("r-1", "r", [{"source_sha256": "e" * 64, "source_path": "/y.pdf", "work_key": "k",
                                     "status": "ok"}])
    legacy.db.execute("delete from meta where key = 'record_shape'")
    legacy.check_schema("shape-a", "a.json", lambda: "shape-a")
    legacy.db.execute("delete from meta where key = 'record_shape'")
    with pytest.raises(OutputError, match="another schema"):
        legacy.check_schema("shape-a", "a.json", lambda: "shape-old")

def test_a_root_from_before_record_shapes_is_read_from_its_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.config.settings import ModelConfig, build_config
    from pipeline.schema.compiled import load_schema
    from pipeline.sink.output import OutputRoot, record_shape
    from pipeline.sink.parquet import documents_schema

    schema = load_schema(INVOICE_SCHEMA)
    root = tmp_path / "out"
    store = StateStore(root)
    rel = "documents/run_date=2026-01-01/part-old-00001.parquet"
    (root / rel).parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([], schema=documents_schema(schema.raw)), root / rel)
    store.register_part("old-1", "old", [rel])
    store.commit_part("old-1", "old", [{"source_sha256": "d" * 64, "source_path": "/z.pdf", "work_key": "k",
                                        "status": "ok"}])
    store.db.execute("delete from meta where key = 'record_shape'")
    store.close()
    cfg = build_config(schema_path=INVOICE_SCHEMA, inputs=(tmp_path,), output=root,
                       model=ModelConfig(path=tmp_path / "m.gguf"))
    with OutputRoot(cfg, schema) as out:
        assert out._existing_shape() == record_shape(schema.raw)
