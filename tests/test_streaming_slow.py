"""A 200-page run: every page exactly once, and the driver's memory stays flat (slow)."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from pipeline.config.settings import ModelConfig, build_config
from pipeline.devtools.samples import many_pages_pdf
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.run.driver import execute_run
from pipeline.schema.compiled import load_schema
from pipeline.sink.dataset import read_table

from .conftest import INVOICE_SCHEMA


@pytest.mark.slow
def test_200_pages_stream_through(tmp_path: Path, tiny_vlm: TinyVLM, ray_local: None) -> None:
    pdf = many_pages_pdf(tmp_path / "in" / "many.pdf", 200)
    cfg = build_config(schema_path=INVOICE_SCHEMA, inputs=(pdf,), output=tmp_path / "out", workers=2,
                       model=ModelConfig(path=tiny_vlm.model, mmproj=tiny_vlm.mmproj, n_threads=1, max_tokens=1024))
    rss: dict[int, int] = {}
    me = psutil.Process()

    def on_row(row: object, total: int) -> None:
        rss[len(rss) + 1] = me.memory_info().rss

    summary = execute_run(cfg, load_schema(INVOICE_SCHEMA), progress=on_row)
    assert summary.pages == 200 and summary.ok + summary.errors == 200
    table = read_table(tmp_path / "out", "pages", columns=["page_number", "status"])
    assert sorted(table.column("page_number").to_pylist()) == list(range(1, 201))
    # Loose bound (not a benchmark): results are streamed to Parquet, not collected.
    assert rss[200] - rss[50] < 64 * 1024 * 1024
