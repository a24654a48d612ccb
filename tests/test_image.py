"""The container image, built and run for real: `extract run` inside it over sample invoices with
the 0.5B mounted read-only, the Parquet read back outside with pyarrow, the files the caller's.

Skipped where neither podman nor docker answers (a failure in CI, tests/conftest.py). The first
build compiles llama.cpp (about 8 minutes on 2 cores); the engine's cache keeps the rest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.devtools.image import TAG, build, engine
from pipeline.model.registry import installed, models_dir

from .conftest import ROOT

pytestmark = pytest.mark.image
IMAGE_USER = 10001  # the image's own non-root user


@pytest.fixture(scope="module")
def image() -> str:
    tool = engine()
    if tool is None:
        pytest.skip("neither podman nor docker answers here (apt-get install podman runc)")
    used, seconds = build(TAG)
    print(f"image built with {used} in {seconds:.0f} s")
    return used


def test_the_image_runs_a_job_as_the_caller_and_writes_parquet_outside(image: str, tmp_path: Path) -> None:
    if not installed("qwen2.5-coder-0.5b"):
        pytest.skip("qwen2.5-coder-0.5b not installed: 'extract models pull qwen2.5-coder-0.5b'")
    data = tmp_path / "data"
    data.mkdir()
    for name in ("invoice-001-classic.pdf", "invoice-002-modern.pdf"):
        shutil.copy(ROOT / "data" / "samples" / name, data / name)
    out = tmp_path / "out"
    out.mkdir()
    # the caller's ids; a root caller runs it as the image's own user (never as root)
    uid = os.getuid() or IMAGE_USER
    gid = os.getgid() or IMAGE_USER
    os.chown(out, uid, gid)
    run = subprocess.run([
        image, "run", "--rm", "--user", f"{uid}:{gid}", "--shm-size", "1g", "--network", "none",
        "-v", f"{models_dir()}:/models:ro", "-v", f"{data}:/data:ro", "-v", f"{out}:/out",
        TAG, "run", "--schema", "/app/schemas/invoice.json", "/data", "--output", "/out",
        "--model", "qwen2.5-coder-0.5b", "--backend", "text", "--samples", "1", "--workers", "1"],
        capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "status=ok" in run.stdout
    documents = pq.read_table(next(out.glob("documents/run_date=*/*.parquet"))).to_pylist()
    assert sorted(Path(d["source_path"]).name for d in documents) == ["invoice-001-classic.pdf",
                                                                      "invoice-002-modern.pdf"]
    assert all(d["status"] == "ok" for d in documents)
    assert any(d["invoice_number"] for d in documents)  # a real model read them
    written = [p for p in out.rglob("*") if p.is_file()]
    assert written and {p.stat().st_uid for p in written} == {uid} and uid != 0


def test_the_image_refuses_bad_usage_in_one_line(image: str) -> None:
    run = subprocess.run([image, "run", "--rm", "--network", "none", TAG, "run", "--schema", "/nope.json", "/data",
                          "--output", "/out"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert len([line for line in run.stderr.splitlines() if line.strip()]) == 1, run.stderr
