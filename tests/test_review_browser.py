"""A day's review in a real browser: Debian's Chromium driven by Playwright against the real app.

The output root comes from a real run of the 0.5B text model (so values are found on the page and
have boxes); the app runs under uvicorn on loopback; the test opens the queue, opens the flagged
document, sees its boxes, corrects a field with the keyboard, approves, and reads the
``corrections`` table and the reviewed view back with pyarrow.  Set ``EXTRACT_REVIEW_SCREENSHOT``
to a PNG path to keep a picture of the document view (the README's comes from here).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.devtools.attacks import attacked
from pipeline.model import registry as models
from pipeline.review import corrections
from pipeline.sink.dataset import read_table

from .conftest import INVOICE_SCHEMA

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium spends its start calling home, which this machine's closed network refuses.
QUIET = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.realmodel, pytest.mark.browser]


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path, ray_local: None) -> Path:
    if models.installed("qwen2.5-coder-0.5b") is None:
        pytest.skip("qwen2.5-coder-0.5b is not installed (extract models pull qwen2.5-coder-0.5b)")
    base = tmp_path_factory.mktemp("review-browser")
    inputs = base / "in"
    inputs.mkdir()
    shutil.copy(attacked(base / "attacks", count=1)[0], inputs / "attacked.pdf")  # flagged: it spoke to the machine
    shutil.copy(sample_dir / "invoice-002-modern.pdf", inputs / "invoice.pdf")
    out = base / "out"
    result = CliRunner().invoke(main, ["run", "--schema", str(INVOICE_SCHEMA), str(inputs), "-o", str(out),
                                       "--model", "qwen2.5-coder-0.5b", "--backend", "text", "--samples", "1",
                                       "--workers", "1", "--threads", "2"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture()
def server(output: Path) -> Iterator[str]:
    import uvicorn

    from pipeline.review.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(output, "ann")
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.started, "the review server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=10)


def test_a_reviewer_corrects_and_approves_a_flagged_invoice_in_chromium(output: Path, server: str) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    flagged = next(d for d in read_table(output, "documents").to_pylist() if d["source_path"].endswith("attacked.pdf"))
    key = flagged["source_sha256"]
    sources = {k: v for k, v in (flagged["field_sources"] or [])}
    assert any(s and s["bbox"] for s in sources.values()), "the 0.5B's values are found on the page"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=QUIET)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(server + "/")
            row = page.locator("table#queue tr", has_text="attacked.pdf")
            assert "injection" in row.inner_text()
            with page.expect_response(lambda r: r.url.endswith("/page/1.png") and r.status == 200):
                row.locator("a.doc").click()
            page.wait_for_url(f"**/doc/{key}")
            boxes = page.locator("rect.box")
            assert boxes.count() == sum(1 for s in sources.values() if s and s["bbox"] and s["page"] == 1)
            assert "withheld" in page.locator(".warning").inner_text()

            total = page.locator('input[name="f:total_amount"]')
            total.focus()
            if sources.get("total_amount") and sources["total_amount"]["bbox"]:  # its box lights up
                assert page.locator('rect.box.active[data-field="total_amount"]').count() == 1
            if os.environ.get("EXTRACT_REVIEW_SCREENSHOT"):
                page.screenshot(path=os.environ["EXTRACT_REVIEW_SCREENSHOT"])
            total.fill("4321.09")
            total.press("Escape")
            page.keyboard.press("a")  # approve, with the correction
            page.wait_for_url(lambda url: f"/doc/{key}" not in url)
            page.goto(server + "/")
            assert "attacked.pdf" not in page.locator("main").inner_text()  # reviewed: out of the queue
        finally:
            browser.close()

    rows = corrections.read(output).to_pylist()
    assert {(r["action"], r["field_path"]) for r in rows} == {("correct", "total_amount"), ("approve", None)}
    fix = next(r for r in rows if r["action"] == "correct")
    assert json.loads(fix["new_value"]) == 4321.09 and fix["source_sha256"] == key and fix["reviewer"] == "ann"
    target = output.parent / "reviewed.parquet"
    result = CliRunner().invoke(main, ["export", "reviewed", str(output), "--to", str(target)])
    assert result.exit_code == 0, result.output
    reviewed = {r["source_sha256"]: r for r in pq.read_table(target).to_pylist()}
    assert reviewed[key]["total_amount"] == 4321.09 and reviewed[key]["reviewed"]
    assert reviewed[key]["corrected_fields"] == ["total_amount"]
    assert reviewed[key]["invoice_number"] == flagged["invoice_number"]  # what the person did not touch


def test_label_studio_tasks_have_the_boxes_of_the_values(output: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["export", "label-studio", str(output), "--to", str(tmp_path / "ls")])
    assert result.exit_code == 0, result.output
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    regions = [r for t in tasks for r in t["predictions"][0]["result"]]
    boxes = [r for r in regions if r["type"] == "rectanglelabels"]
    assert boxes and len(boxes) == len([r for r in regions if r["type"] == "textarea"])
    for box in boxes:
        value = box["value"]
        assert 0 <= value["x"] <= 100 and 0 <= value["y"] <= 100 and 0 < value["width"] <= 100
        assert value["rectanglelabels"][0] and "[" not in value["rectanglelabels"][0]
