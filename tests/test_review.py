"""The review app without a browser: queue, document view, pictures, corrections as data, security.

The output root is written by a real run (tiny llama.cpp model, real Ray, real Parquet); the app
is driven through Starlette's TestClient; what it writes is read back with pyarrow.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from pipeline.cli import main
from pipeline.consensus.vote import consensus
from pipeline.devtools.attacks import attacked
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.review import corrections
from pipeline.review.app import create_app
from pipeline.review.fields import ValueRefused, form_fields, parse_value, set_path, steps
from pipeline.review.queue import build_queue
from pipeline.sink.dataset import read_table
from pipeline.sink.parquet import repair
from pipeline.sink.state import StateStore

from .conftest import INVOICE_SCHEMA

SHA = re.compile(r"/doc/([0-9a-f]{64})")


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path, tiny_vlm: TinyVLM, ray_local: None) -> Path:
    """A run's output root: two generated invoices, a photo, a failing multi-page scan, an attacked invoice."""
    base = tmp_path_factory.mktemp("review")
    inputs = base / "in"
    inputs.mkdir()
    for name in ("invoice-001-classic.pdf", "multipage-001.pdf", "photo-001.png"):
        shutil.copy(sample_dir / name, inputs / name)
    shutil.copy(attacked(base / "attacks", count=1)[0], inputs / "attacked.pdf")
    out = base / "out"
    result = CliRunner().invoke(main, ["run", "--schema", str(INVOICE_SCHEMA), str(inputs), "-o", str(out),
                                       "--model", str(tiny_vlm.model), "--backend", "text", "--max-tokens", "256",
                                       "--samples", "2"])
    assert result.exit_code == 0, result.output
    flagged = sum(bool(d["needs_review"]) for d in read_table(out, "documents").to_pylist())
    assert f"{flagged} documents need a person: extract review {out}" in " ".join(result.output.split())
    return out


@pytest.fixture()
def root(output: Path, tmp_path: Path) -> Path:
    """A copy of the output root per test, so one test's reviews do not empty another's queue."""
    return Path(shutil.copytree(output, tmp_path / "out"))


def _local(app: Any, **options: Any) -> TestClient:
    """A client that names the server as a browser on this machine does."""
    return TestClient(app, base_url="http://localhost:8765", **options)


def test_only_its_own_names_are_answered(root: Path) -> None:
    """DNS rebinding: a page on attacker.example rebinds its name to 127.0.0.1; the Host header keeps it."""
    app = create_app(root, "ann", hosts=("review.internal",))
    for host in ("localhost:8765", "127.0.0.1:8765", "review.internal:8765"):
        assert TestClient(app, base_url=f"http://{host}").get("/").status_code == 200, host
    foreign = TestClient(app, base_url="http://attacker.example:8765")
    assert foreign.get("/").status_code == 400
    assert foreign.get("/static/review.js").status_code == 400


def _queue_keys(client: TestClient) -> list[str]:
    page = client.get("/")
    assert page.status_code == 200
    return list(dict.fromkeys(SHA.findall(page.text)))


def _form(client: TestClient, key: str) -> dict[str, str]:
    page = client.get(f"/doc/{key}")
    assert page.status_code == 200
    hidden = dict(re.findall(r'name="(csrf|review_id)" value="([^"]+)"', page.text))
    return {**hidden}


def test_the_queue_holds_the_flagged_documents_most_doubtful_first(root: Path) -> None:
    client = _local(create_app(root, "ann"))
    documents = read_table(root, "documents").to_pylist()
    flagged = [d for d in documents if d["needs_review"] or d["status"] != "ok"]
    assert flagged, "the run flags the attacked invoice and the failed scan"
    keys = _queue_keys(client)
    assert len(keys) == len([d for d in flagged if d["source_sha256"]])
    items = build_queue(documents, set())
    assert [i.doubt for i in items] == sorted((i.doubt for i in items), reverse=True)
    attacked_doc = next(d for d in documents if d["source_path"].endswith("attacked.pdf"))
    only = client.get("/", params={"reason": "injection"}).text
    assert SHA.findall(only) == [attacked_doc["source_sha256"]] * len(SHA.findall(only)) and SHA.findall(only)
    assert "Nothing to review" in client.get("/", params={"run_date": "1999-01-01"}).text


def test_the_document_view_shows_the_page_the_values_and_why(root: Path) -> None:
    client = _local(create_app(root, "ann"))
    doc = next(d for d in read_table(root, "documents").to_pylist() if d["source_path"].endswith("attacked.pdf"))
    page = client.get(f"/doc/{doc['source_sha256']}")
    assert page.status_code == 200
    assert 'name="f:total_amount"' in page.text and 'name="f:line_items[0].amount"' in page.text
    assert "withheld" in page.text and "injection" in page.text  # the quarantined text is shown to the person
    assert f"/doc/{doc['source_sha256']}/page/1.png" in page.text
    png = client.get(f"/doc/{doc['source_sha256']}/page/1.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_a_correction_is_written_once_and_the_reviewed_view_applies_it(root: Path) -> None:
    client = _local(create_app(root, "ann"), follow_redirects=False)
    key = _queue_keys(client)[0]
    before = next(d for d in read_table(root, "documents").to_pylist() if d["source_sha256"] == key)
    form = {**_form(client, key), "f:total_amount": "1.234,50", "f:invoice_number": "INV-REVIEWED",
            "f:issue_date": "3.1.2026"}
    answer = client.post(f"/doc/{key}", data=form)
    assert answer.status_code == 303
    again = client.post(f"/doc/{key}", data=form)  # the same form sent twice (a double click)
    assert again.status_code == 303
    table = pq.read_table(next((root / "corrections").glob("run_date=*/*.parquet")))
    rows = corrections.read(root).to_pylist()
    assert table.num_rows == len(rows) and len(list((root / "corrections").glob("run_date=*/*.parquet"))) == 1
    changed = {r["field_path"]: r for r in rows if r["action"] == "correct"}
    assert set(changed) >= {"total_amount", "invoice_number", "issue_date"}
    assert json.loads(changed["total_amount"]["new_value"]) == 1234.5
    assert json.loads(changed["issue_date"]["new_value"]) == "2026-01-03"
    assert changed["total_amount"]["old_value"] == (None if before["total_amount"] is None
                                                    else json.dumps(before["total_amount"]))
    assert [r["action"] for r in rows].count("approve") == 1 and {r["reviewer"] for r in rows} == {"ann"}
    assert key not in _queue_keys(client)
    shown = CliRunner().invoke(main, ["show", str(root), "--table", "corrections"])
    assert shown.exit_code == 0 and "INV-REVIEWED" in shown.output and "approve" in shown.output

    target = root.parent / "reviewed.parquet"
    result = CliRunner().invoke(main, ["export", "reviewed", str(root), "--to", str(target)])
    assert result.exit_code == 0, result.output
    reviewed = {r["source_sha256"]: r for r in pq.read_table(target).to_pylist()}
    assert reviewed[key]["total_amount"] == 1234.5 and reviewed[key]["invoice_number"] == "INV-REVIEWED"
    assert str(reviewed[key]["issue_date"]) == "2026-01-03"
    assert reviewed[key]["reviewed"] and reviewed[key]["reviewed_by"] == "ann"
    assert not any(r["reviewed"] for k, r in reviewed.items() if k != key)
    machine = {r["source_sha256"]: r for r in read_table(root, "documents").to_pylist()}
    assert machine[key]["total_amount"] == before["total_amount"]  # documents stays the machine's output

    report = root.parent / "eval.json"
    result = CliRunner().invoke(main, ["eval", "--truth", "corrections", str(root), "--json", str(report)])
    assert result.exit_code == 0, result.output
    scored = json.loads(report.read_text())
    assert scored["documents"] == 1 and scored["fields"]["total_amount"]["accuracy"] == 0.0
    assert scored["fields"]["total_amount"]["stated"] == 1


def test_a_value_the_field_cannot_hold_is_refused_and_nothing_is_written(root: Path) -> None:
    client = _local(create_app(root, "ann"), follow_redirects=False)
    key = _queue_keys(client)[0]
    answer = client.post(f"/doc/{key}", data={**_form(client, key), "f:total_amount": "twelve",
                                               "f:currency": "DOLLARS"})
    assert answer.status_code == 422
    assert "&#39;twelve&#39; is not a number" in answer.text and "is not one of" in answer.text
    assert not (root / "corrections").exists()


def test_writes_need_the_forms_csrf_token(root: Path) -> None:
    client = _local(create_app(root, "ann"), follow_redirects=False)
    key = _queue_keys(client)[0]
    form = _form(client, key)
    for bad in ({**form, "csrf": "forged"}, {k: v for k, v in form.items() if k != "csrf"}):
        assert client.post(f"/doc/{key}", data={**bad, "f:invoice_number": "X"}).status_code == 403
    other = _local(create_app(root, "ann"), follow_redirects=False)  # another server: another token
    assert other.post(f"/doc/{key}", data={**form, "f:invoice_number": "X"}).status_code == 403
    assert not (root / "corrections").exists()


@pytest.mark.parametrize("path", [
    "/doc/..%2F..%2F..%2Fetc%2Fpasswd", "/doc/../../etc/passwd", "/doc/%2e%2e/%2e%2e/etc/passwd/page/1.png",
    "/static/..%2Fapp.py", "/static/../app.py", "/static/app.py", "/static/%2e%2e%2ftemplates%2fbase.html",
    "/doc/" + "0" * 64, "/doc/" + "0" * 64 + "/page/1.png", "/doc/etc%2Fpasswd/page/1.png",
])
def test_no_path_outside_the_recorded_sources_is_served(root: Path, path: str) -> None:
    client = _local(create_app(root, "ann"))
    answer = client.get(path)
    assert answer.status_code == 404, (path, answer.status_code)
    assert "root:" not in answer.text and "import" not in answer.text


def test_a_source_changed_since_the_run_is_not_shown(root: Path) -> None:
    client = _local(create_app(root, "ann"))
    doc = next(d for d in read_table(root, "documents").to_pylist() if d["source_path"].endswith("attacked.pdf"))
    assert client.get(f"/doc/{doc['source_sha256']}/page/9.png").status_code == 410  # no such page
    moved = Path(doc["source_path"]).with_suffix(".bak")
    shutil.move(doc["source_path"], moved)
    try:
        Path(doc["source_path"]).write_bytes(b"%PDF-1.4 someone else's file")
        answer = client.get(f"/doc/{doc['source_sha256']}/page/1.png")
        assert answer.status_code == 410 and "changed since the run" in answer.text
        assert "changed since the run" in client.get(f"/doc/{doc['source_sha256']}").text
    finally:
        shutil.move(moved, doc["source_path"])


def test_a_token_guards_every_request(root: Path) -> None:
    client = _local(create_app(root, "ann", token="s3cret-token"), follow_redirects=False)
    assert client.get("/").status_code == 401
    assert client.get("/static/review.css").status_code == 401
    entry = client.get("/", params={"token": "wrong-token"})
    assert entry.status_code == 401
    entry = client.get("/", params={"token": "s3cret-token", "reason": "failed"})
    assert entry.status_code == 303 and entry.headers["location"] == "/?reason=failed"
    assert client.get("/").status_code == 200  # the cookie from now on


def test_a_server_off_loopback_without_a_token_is_refused(root: Path) -> None:
    result = CliRunner().invoke(main, ["review", str(root), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--token" in result.output and "Traceback" not in result.output and len(result.output.splitlines()) == 1
    result = CliRunner().invoke(main, ["review", str(root.parent / "nothing-here")])
    assert result.exit_code == 2 and "no documents table" in result.output


def test_a_review_killed_half_way_is_undone_by_the_next_review_and_never_by_a_run(root: Path) -> None:
    store = StateStore(root)
    half = "corrections/run_date=2026-01-01/part-review-killed.parquet"
    store.register_part("review-killed", "r", [half])
    (root / half).parent.mkdir(parents=True)
    (root / half).write_bytes(b"half a file")
    repair(root, store)  # a run starting now
    store.close()
    assert (root / half).exists()
    key = read_table(root, "documents").column("source_sha256").to_pylist()[0]
    row = {"review_id": corrections.new_review_id(), "source_sha256": key, "source_path": "x", "run_id": None,
           "action": "approve", "field_path": None, "old_value": None, "new_value": None, "reviewer": "ann"}
    assert corrections.append(root, [row])
    assert not (root / half).exists()
    assert corrections.read(root).num_rows == 1
    assert not corrections.append(root, [row])  # the same review again: written once
    assert corrections.read(root).num_rows == 1


def test_label_studio_tasks_carry_the_pages_and_predictions(root: Path) -> None:
    target = root.parent / "ls"
    result = CliRunner().invoke(main, ["export", "label-studio", str(root), "--to", str(target)])
    assert result.exit_code == 0, result.output
    tasks = json.loads((target / "tasks.json").read_text())
    documents = [d for d in read_table(root, "documents").to_pylist() if d["source_sha256"]]
    assert len(tasks) == sum(d["page_count"] for d in documents)
    for task in tasks:
        name = task["data"]["image"].rsplit("/", 1)[-1]
        assert (target / "images" / name).read_bytes()[:4] == b"\x89PNG"
        assert task["predictions"][0]["result"] is not None
    import xml.etree.ElementTree as ET

    assert ET.parse(target / "config.xml").getroot().tag == "View"


def test_typed_values_are_read_by_the_fields_schema_type() -> None:
    schema = json.loads(INVOICE_SCHEMA.read_text())
    from pipeline.schema.paths import node_at

    assert parse_value(" 1.234,56 ", node_at(schema, "line_items[3].amount"), schema) == 1234.56
    with pytest.raises(ValueRefused):
        parse_value("2026-02-30", node_at(schema, "issue_date"), schema)
    assert parse_value("", node_at(schema, "seller.name"), schema) is None
    with pytest.raises(ValueRefused):
        parse_value("soon", node_at(schema, "due_date"), schema)
    with pytest.raises(ValueRefused):
        steps("line_items[x].amount")
    assert set_path({"line_items": [{"amount": 1}]}, "line_items[1].amount", 2) == \
        {"line_items": [{"amount": 1}, {"amount": 2}]}
    rows = [f.path for f in form_fields({"line_items": [{"amount": 1}]}, schema) if f.row is not None]
    assert "line_items[1].amount" in rows  # one empty row more, for a line the machine missed


def test_the_vote_keeps_what_the_other_samples_read() -> None:
    schema = json.loads(INVOICE_SCHEMA.read_text())
    voted = consensus([{"total_amount": 10.0, "invoice_number": "A"}, {"total_amount": 12.0, "invoice_number": "A"},
                       {"total_amount": 10.0, "invoice_number": "A"}], schema)
    assert voted.record["total_amount"] == 10.0
    assert voted.alternatives == {"total_amount": [12.0]}


def test_reviews_are_compacted_into_one_part_and_none_is_lost(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corrections, "COMPACT_AT", 4)
    keys = read_table(root, "documents").column("source_sha256").to_pylist()
    written = []
    for i in range(6):
        row = {"review_id": corrections.new_review_id(), "source_sha256": keys[i % len(keys)], "source_path": "x",
               "run_id": None, "action": "approve", "field_path": None, "old_value": None, "new_value": None,
               "reviewer": f"r{i}"}
        assert corrections.append(root, [row])
        written.append(row["review_id"])
    files = sorted((root / "corrections").glob("run_date=*/*.parquet"))
    assert len(files) == 3  # four compacted into one, then two more
    assert sorted(corrections.read(root).column("review_id").to_pylist()) == sorted(written)
    orphan = files[0].with_name("part-review-orphan.parquet")  # a compaction killed before it removed a file
    shutil.copy(files[0], orphan)
    assert corrections.read(root).num_rows == 6  # read through the state store: the orphan is not counted
    again = {"review_id": written[0], "source_sha256": keys[0], "source_path": "x", "run_id": None,
             "action": "approve", "field_path": None, "old_value": None, "new_value": None, "reviewer": "r0"}
    assert not corrections.append(root, [again])  # a compacted review is still written only once
    assert not orphan.exists() and corrections.read(root).num_rows == 6  # the next writer clears the orphan
