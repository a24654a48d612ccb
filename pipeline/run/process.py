"""Streaming the page tasks through the workers into the assembler, with batch adjudication held back."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

from pipeline.adjudicate.setup import RunAdjudication
from pipeline.config.settings import RunConfig
from pipeline.errors import ExtractError, RuntimeCrash
from pipeline.merge.assemble import DocumentAssembler
from pipeline.results import PAGES_READ, PageResult
from pipeline.run.quarantine import QUARANTINED, STOPPED, CrashCounter, crash_folder
from pipeline.run.ray_pool import ensure_ray, stream
from pipeline.schema.compiled import CompiledSchema

Progress = Callable[[PageResult, int], None]


def process_pages(cfg: RunConfig, schema: CompiledSchema, tasks: list[dict[str, Any]],
                  ready: list[PageResult], assembly: tuple[dict[str, Any], Any, dict[Any, Any]], model_sha256: str,
                  progress: Progress | None, adjudication: RunAdjudication,
                  notes: dict[str, Any]) -> tuple[DocumentAssembler, list[float]]:
    """Stream the pages through the workers into a document assembler (``assembly``: the rows'
    stamp, the part writer, the e-invoice outcomes); commit what is finished."""
    stamp, writer, einvoices = assembly
    assembler = DocumentAssembler(schema, stamp, writer, einvoices, cfg.adjudication.below,
                                  cfg.review_below)
    total = sum(int(t.get(PAGES_READ, 1)) for t in tasks) + len(ready)
    latencies: list[float] = []
    accepted = [0]

    def accept(result: PageResult) -> None:
        accepted[0] += 1
        assembler.add(result)
        if result.latency_ms:
            latencies.append(float(result.latency_ms))
        if progress:
            progress(result, total)

    # A quarantined page is written once another page has come back ok after it (or the run
    # ends): if the deaths turn out to be the runtime's, not the page's, it stays to do.
    quarantined: list[PageResult] = []

    def take(row: dict[str, Any]) -> None:
        result = PageResult.from_row(dict(row))
        error = result.error or ""
        if error.startswith(STOPPED):
            left = total - accepted[0]
            raise RuntimeCrash(f"{error[len(STOPPED):]}; the run stopped with about {left} pages left to do "
                               "(none written off as quarantined since): the next run does them")
        if error.startswith(QUARANTINED):
            quarantined.append(result)
            return
        if result.status == "ok":
            release_quarantined()
        if not adjudication.hold(result):  # batch mode: the page waits for the Message Batch
            accept(result)

    def release_quarantined() -> None:
        while quarantined:
            accept(quarantined.pop(0))

    started_ray = False
    try:
        for done in ready:  # no model needed: files that cannot be opened, e-invoices read from their XML
            accept(done)
        if tasks:
            import ray

            started_ray = ensure_ray(cfg)
            keeper = adjudication.budget_keeper()
            crash_counter = ray.remote(num_cpus=0)(CrashCounter).remote(cfg.workers)  # type: ignore[attr-defined]
            for row in stream(cfg, tasks, schema, model_sha256, keeper, crash_counter, notes):
                take(row)
            release_quarantined()
        for answered in adjudication.finish():
            accept(answered)
        assembler.finish()
        writer.flush()
    except BaseException as exc:
        # Committed parts stay (they are done); the documents in flight are redone next run.
        if isinstance(exc, (ExtractError, KeyboardInterrupt)):
            raise
        raise ExtractError(f"run failed: {' '.join(str(exc).split())[:300]}") from exc
    finally:
        if started_ray:
            import ray

            ray.shutdown()
        shutil.rmtree(crash_folder(cfg.run_id), ignore_errors=True)
    return assembler, latencies
