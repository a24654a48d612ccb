"""A run's summary and its manifest (``OUT/_runs/RUN_ID.json``): what was asked, decided, done and spent."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from pipeline.config.settings import RunConfig
from pipeline.run.resolve import resolved_values
from pipeline.schema.compiled import CompiledSchema
from pipeline.sink.state import TABLES


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    output: str
    manifest_path: str
    files: int
    pages: int
    ok: int
    errors: int
    documents: dict[str, int]
    skipped: dict[str, int]
    repaired: dict[str, int]
    seconds: float
    api_cost_usd: float = 0.0
    status: str = "ok"  # or "failed" (see run_status)
    failure: str | None = None

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.pages if self.pages else 0.0


def run_status(pages: int, ok: int, errors: int, max_error_rate: float | None) -> tuple[str, str | None]:
    """A run fails when it had pages to do and none came out ok, or its error share passes the
    threshold; a run with nothing to do (all done before) is ok. Why: a nightly job that wrote
    only error rows must not look like a quiet night to cron."""
    if pages and not ok:
        return "failed", f"no page succeeded ({errors} of {pages} pages are errors)"
    rate = errors / pages if pages else 0.0
    if max_error_rate is not None and rate > max_error_rate:
        return "failed", f"error rate {rate:.1%} is above the threshold {max_error_rate:.1%}"
    return "ok", None


def build_manifest(cfg: RunConfig, schema: CompiledSchema, summary: RunSummary, started_at: datetime,
                   model_sha256: str, mmproj_sha256: str | None,
                   latencies: list[float]) -> dict[str, Any]:
    return {
        "run_id": cfg.run_id,
        "status": summary.status,
        "failure": summary.failure,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "config": json.loads(cfg.model_dump_json()),
        "resolved": resolved_values(cfg),
        "schema": {"path": schema.path, "sha256": schema.sha256},
        "model": {"path": str(cfg.model.path), "sha256": model_sha256,
                  "mmproj": str(cfg.model.mmproj) if cfg.model.mmproj else None,
                  "mmproj_sha256": mmproj_sha256, "chat_handler": cfg.chat_handler, "backend": cfg.backend},
        "job": cfg.job,
        "counts": {"files": summary.files, "pages": summary.pages, "ok": summary.ok,
                   "error": summary.errors, "documents": summary.documents,
                   "error_rate": round(summary.error_rate, 4)},
        "timings": {"seconds": summary.seconds, "pages_per_second": round(summary.pages_per_second, 4),
                    "mean_page_latency_ms": round(sum(latencies) / len(latencies), 2) if latencies else None},
        "skipped": summary.skipped,
        "repaired": summary.repaired,
        "outputs": {t: str(cfg.output / t) for t in TABLES},
        "versions": versions(),
    }


def versions() -> dict[str, str]:
    """What ran: Python and the packages that decide results (manifests and `extract doctor`)."""
    out = {"python": platform.python_version()}
    for dist in ("extract", "llama_cpp_python", "ray", "pyarrow", "pymupdf", "jsonschema"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
