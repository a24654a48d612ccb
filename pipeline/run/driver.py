"""The driver: check everything, plan the work that is not done yet, stream it through Ray.

Order matters: the schema, inputs, model and output folder are all checked before Ray starts
or a page is read, so a mistake costs seconds, not a night.  Then, holding the output root's
lock, the driver repairs what a killed run left half-done, skips documents already done with
the same settings (by content hash: a renamed or copied file is not redone), and streams the
rest through a Ray Data pipeline (page list -> actor pool of ``workers`` llama.cpp workers ->
driver).  Finished documents are committed in small parts (see ``pipeline.sink.state``), so
memory stays flat however many pages and a crash costs at most one part.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from pipeline.adjudicate.setup import RunAdjudication
from pipeline.config.settings import RunConfig
from pipeline.model.probe import check_model_runs
from pipeline.run.manifest import RunSummary, build_manifest, run_status
from pipeline.run.plan import plan_pages, prepare, select_work
from pipeline.run.process import Progress, process_pages
from pipeline.schema.compiled import CompiledSchema
from pipeline.sink.output import OutputRoot

__all__ = ["RunSummary", "execute_run"]


def execute_run(cfg: RunConfig, schema: CompiledSchema, progress: Progress | None = None) -> RunSummary:
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc)
    cfg, files, model_sha256, mmproj_sha256 = prepare(cfg, schema)
    adjudication = RunAdjudication(cfg, schema)  # a missing API key fails here, before any page
    with OutputRoot(cfg, schema) as out:
        settings = cfg.settings_key(schema.sha256, model_sha256, mmproj_sha256)
        todo, skipped = select_work(files, out.store.done(), settings, cfg.force, cfg.retry_errors)
        plan = plan_pages(todo, cfg.limit, schema, cfg.einvoice, cfg.model.read_pages if cfg.backend == "text" else 1)
        # Before any page: a llama.cpp that dies on this machine stops here, in a child, with nothing written.
        probe = check_model_runs(cfg.model) if plan.tasks else None
        probe_done = time.perf_counter() if probe else None
        stamp = {"run_id": cfg.run_id, "model_name": cfg.model.path.name, "model_sha256": model_sha256,
                 "prompt_version": cfg.prompt_version, "schema_sha256": schema.sha256, "work_key": settings}
        writer = out.writer()
        notes: dict[str, Any] = {}
        assembler, latencies = process_pages(cfg, schema, plan.tasks, plan.ready, (stamp, writer, plan.einvoices),
                                             model_sha256, progress, adjudication, notes)
        api = assembler.api
        ok, errors = assembler.page_counts["ok"], assembler.page_counts["error"]
        status, failure = run_status(plan.pages, ok, errors, cfg.max_error_rate)
        summary = RunSummary(cfg.run_id, str(cfg.output), str(out.manifest_path()), len(files),
                             plan.pages, ok, errors, dict(assembler.document_counts), skipped,
                             out.repaired, round(time.perf_counter() - started, 3), round(api["api_cost_usd"], 6),
                             status, failure)
        manifest = build_manifest(cfg, schema, summary, started_at, model_sha256, mmproj_sha256, latencies)
        manifest["state"] = {"settings_key": settings, "parts": writer.parts}
        manifest["probe"] = None if probe is None else {
            "seconds": probe.seconds, "build_features": probe.features,
            "seconds_from_start": round(probe_done - started, 2) if probe_done else None}
        manifest["traces"] = {**assembler.traces, **notes}
        manifest["work"] = assembler.work.summary()
        manifest["adjudication"] = {
            "provider": cfg.adjudication.provider, "model": cfg.adjudication.model,
            "budget_usd": cfg.adjudication.budget_usd, "pages_adjudicated": int(api["pages_adjudicated"]),
            "rate": round(api["pages_adjudicated"] / summary.pages, 4) if summary.pages else 0.0,
            "input_tokens": int(api["api_input_tokens"]), "output_tokens": int(api["api_output_tokens"]),
            "cost_usd": round(api["api_cost_usd"], 6)}
        out.write_manifest(manifest)
        return summary
