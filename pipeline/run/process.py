"""Streaming the page tasks through the workers into the assembler, with batch adjudication held back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.adjudicate.setup import RunAdjudication
from pipeline.config.settings import RunConfig
from pipeline.errors import ExtractError
from pipeline.merge.assemble import DocumentAssembler
from pipeline.results import SPAN, PageResult
from pipeline.run.quarantine import CrashCounter
from pipeline.run.ray_pool import ensure_ray, stream
from pipeline.schema.compiled import CompiledSchema

Progress = Callable[[PageResult, int], None]


def process_pages(cfg: RunConfig, schema: CompiledSchema, tasks: list[dict[str, Any]],
                  ready: list[PageResult], assembler: DocumentAssembler, model_sha256: str,
                  progress: Progress | None, adjudication: RunAdjudication, notes: dict[str, Any]) -> list[float]:
    """Stream the pages through the workers into the assembler; commit what is finished."""
    total = sum(int(t.get(SPAN, 1)) for t in tasks) + len(ready)
    latencies: list[float] = []

    def accept(result: PageResult) -> None:
        assembler.add(result)
        if result.latency_ms:
            latencies.append(float(result.latency_ms))
        if progress:
            progress(result, total)

    def take(row: dict[str, Any]) -> None:
        result = PageResult.from_row(dict(row))
        if not adjudication.hold(result):  # batch mode: the page waits for the Message Batch
            accept(result)

    started_ray = False
    try:
        for done in ready:  # no model needed: files that cannot be opened, e-invoices read from their XML
            accept(done)
        if tasks:
            import ray

            started_ray = ensure_ray(cfg)
            keeper = adjudication.budget_keeper()
            crash_counter = ray.remote(num_cpus=0)(CrashCounter).remote()  # type: ignore[attr-defined]
            for row in stream(cfg, tasks, schema, model_sha256, keeper, crash_counter, notes):
                take(row)
        for answered in adjudication.finish():
            accept(answered)
        assembler.finish()
        assembler.writer.flush()
    except BaseException as exc:
        # Committed parts stay (they are done); the documents in flight are redone next run.
        if isinstance(exc, (ExtractError, KeyboardInterrupt)):
            raise
        raise ExtractError(f"run failed: {' '.join(str(exc).split())[:300]}") from exc
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return latencies
