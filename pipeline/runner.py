"""The driver: check everything, plan the work that is not done yet, stream it through Ray.

Order matters: the schema, inputs, model and output folder are all checked before Ray starts
or a page is read, so a mistake costs seconds, not a night.  Then, holding the output root's
lock, the driver repairs what a killed run left half-done, skips documents already done with
the same settings (by content hash: a renamed or copied file is not redone), and streams the
rest through a Ray Data pipeline (page list -> actor pool of ``workers`` llama.cpp workers ->
driver).  Finished documents are committed in small parts (see ``pipeline.state``), so memory
stays flat however many pages and a crash costs at most one part.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.adjudicate.base import AdjudicationResult
from pipeline.assemble import DocumentAssembler
from pipeline.config import RunConfig, cpu_count
from pipeline.errors import ExtractError
from pipeline.model.context import resolve_n_ctx
from pipeline.model.llama import preflight
from pipeline.quarantine import CrashCounter
from pipeline.render import RenderError, page_count
from pipeline.schema import CompiledSchema
from pipeline.sink import PartWriter, documents_schema, ensure_writable, pages_schema, repair, write_json_atomic
from pipeline.sources import SourceFile, discover, file_sha256
from pipeline.state import RUNS_DIR, STATE_DIR, TABLES, Done, RunLock, StateStore, source_key
from pipeline.worker import PageWorker

Progress = Callable[[dict[str, Any], int], None]


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

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.pages if self.pages else 0.0


def select_work(files: list[SourceFile], done: dict[str, Done], settings: str, force: bool,
                retry_errors: bool) -> tuple[list[SourceFile], dict[str, int]]:
    """Files still to do, and why the others are skipped.

    Done means: same content hash, same result-changing settings, and not an error that the
    user asked to retry.  A second path with the same bytes (a copy) is the same document.
    """
    todo: list[SourceFile] = []
    skipped = {"done": 0, "duplicate": 0, "errors_kept": 0}
    seen: set[str] = set()
    for f in files:
        key = source_key({"source_sha256": f.sha256, "source_path": str(f.path)})
        if key in seen:
            skipped["duplicate"] += 1
            continue
        seen.add(key)
        prior = done.get(key)
        if prior is None or force or prior.work_key != settings:
            todo.append(f)
        elif prior.status == "ok" or not retry_errors:
            skipped["done" if prior.status == "ok" else "errors_kept"] += 1
        else:
            todo.append(f)
    return todo, skipped


def plan_pages(files: list[SourceFile], limit: int | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Page tasks for the workers, and error rows for files that cannot even be opened.

    ``limit`` counts pages but never splits a document: a half-done document could not be
    committed, so the document that reaches the limit is the last one taken.
    """
    tasks: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for f in files:
        if limit is not None and len(tasks) + len(errors) >= limit:
            break
        base = {"source_path": str(f.path), "source_sha256": f.sha256}
        try:
            if f.error:
                raise RenderError(f.error)
            count = page_count(f.path)
        except RenderError as exc:
            errors.append({**base, "page_number": None, "page_count": None, "status": "error",
                           "error": f"open_error: {exc}", "attempts": 0})
            continue
        tasks.extend({**base, "page_number": n, "page_count": count} for n in range(1, count + 1))
    return tasks, errors


def ensure_ray(cfg: RunConfig) -> bool:
    """Connect to the cluster named by --ray-address / RAY_ADDRESS, else start an embedded one.

    Returns True when this call started Ray (and so should stop it).
    """
    import ray
    import ray.data

    if ray.is_initialized():
        return False
    level = logging.INFO if cfg.model.verbose else logging.ERROR
    for handler in logging.getLogger("ray.data").handlers:  # Ray Data's own console handler
        if handler.get_name() == "console":
            handler.setLevel(level)
    if not cfg.model.verbose:
        # The driver's core worker logs to stderr in C++; keep a nightly log readable.
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    address = cfg.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        try:
            ray.init(address=address, log_to_driver=cfg.model.verbose, logging_level=level)
        except ConnectionError as exc:
            hint = "" if os.environ.get("RAY_AUTH_MODE") else (
                "; a cluster started with 'ray start' (Ray >= 2.59) uses token authentication: "
                "set RAY_AUTH_MODE=token here too")
            raise ExtractError(f"cannot connect to the Ray cluster at {address}: {exc}{hint}") from None
    else:
        # address="local": always a new embedded Ray, even if 'ray start' left a cluster on this machine.
        cpus = max(cpu_count(), cfg.workers * cfg.model.n_threads)
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=cfg.model.verbose,
                 logging_level=level)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    return True


def execute_run(cfg: RunConfig, schema: CompiledSchema, progress: Progress | None = None) -> RunSummary:
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc)
    files = discover(cfg.inputs)
    chat_handler = preflight(cfg.model, schema, cfg.backend)
    if cfg.model.n_ctx is None:  # sized once here, so every worker allocates the same and the manifest says it
        n_ctx = resolve_n_ctx(cfg.model, schema.raw, cfg.backend == "vlm", cfg.max_pixels, chat_handler)
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"n_ctx": n_ctx})})
    adjudicator = None
    if cfg.adjudication.provider != "none":  # a missing API key fails here, before any page
        from pipeline.adjudicate.base import Budget
        from pipeline.adjudicate.setup import make_adjudicator

        adjudicator = make_adjudicator(cfg.adjudication, schema, Budget(cfg.adjudication.budget_usd))
    model_sha256 = file_sha256(cfg.model.path)
    mmproj_sha256 = file_sha256(cfg.model.mmproj) if cfg.model.mmproj else None
    ensure_writable(cfg.output)
    lock = RunLock(cfg.output)
    lock.acquire(cfg.run_id)
    store = StateStore(cfg.output)
    try:
        store.check_schema(schema.sha256, schema.path)
        repaired = repair(cfg.output, store)
        settings = cfg.settings_key(schema.sha256, model_sha256, mmproj_sha256)
        todo, skipped = select_work(files, store.done(), settings, cfg.force, cfg.retry_errors)
        tasks, open_errors = plan_pages(todo, cfg.limit)
        stamp = {"run_id": cfg.run_id, "model_name": cfg.model.path.name, "model_sha256": model_sha256,
                 "prompt_version": cfg.prompt_version, "schema_sha256": schema.sha256, "work_key": settings}
        writer = PartWriter(cfg.output, cfg.run_id, datetime.now().date().isoformat(),
                            {"documents": documents_schema(schema.raw), "pages": pages_schema(schema.raw)},
                            store, cfg.commit_documents, cfg.commit_seconds)
        assembler = DocumentAssembler(schema, stamp, writer)
        batch = _batch_runner(cfg, adjudicator)
        latencies = _process(cfg, schema, tasks, open_errors, assembler, model_sha256, chat_handler, progress,
                             batch)
        seconds = time.perf_counter() - started
        api = assembler.api
        summary = RunSummary(cfg.run_id, str(cfg.output), str(cfg.output / RUNS_DIR / f"{cfg.run_id}.json"),
                             len(files), len(tasks) + len(open_errors), assembler.page_counts["ok"],
                             assembler.page_counts["error"], dict(assembler.document_counts), skipped,
                             {**repaired, "lock_taken_over": int(lock.previous is not None)}, round(seconds, 3),
                             round(api["api_cost_usd"], 6))
        manifest = _manifest(cfg, schema, summary, started_at, chat_handler, model_sha256, mmproj_sha256,
                             latencies)
        manifest["state"] = {"settings_key": settings, "parts": writer.parts, "documents_done": store.counts(),
                             "previous_lock_holder": lock.previous}
        manifest["adjudication"] = {
            "provider": cfg.adjudication.provider, "model": cfg.adjudication.model,
            "budget_usd": cfg.adjudication.budget_usd, "pages_adjudicated": int(api["pages_adjudicated"]),
            "rate": round(api["pages_adjudicated"] / summary.pages, 4) if summary.pages else 0.0,
            "input_tokens": int(api["api_input_tokens"]), "output_tokens": int(api["api_output_tokens"]),
            "cost_usd": round(api["api_cost_usd"], 6)}
        write_json_atomic(Path(summary.manifest_path), manifest)
        return summary
    finally:
        store.close()
        lock.release()


def _process(cfg: RunConfig, schema: CompiledSchema, tasks: list[dict[str, Any]],
             open_errors: list[dict[str, Any]], assembler: DocumentAssembler, model_sha256: str,
             chat_handler: str | None, progress: Progress | None, batch: Any = None) -> list[float]:
    """Stream the pages through the workers into the assembler; commit what is finished."""
    total = len(tasks) + len(open_errors)
    latencies: list[float] = []

    def accept(row: dict[str, Any]) -> None:
        page = assembler.add(row)
        if row.get("latency_ms"):
            latencies.append(float(row["latency_ms"]))
        if progress:
            progress(page, total)

    held: dict[str, dict[str, Any]] = {}  # batch mode: pages waiting for the Message Batch

    def take(row: Any) -> None:
        row = dict(row)
        request = row.pop("batch_request", None)
        if batch is not None and request:
            held[batch.add(json.loads(request))] = row
        else:
            accept(row)

    started_ray = False
    try:
        for row in open_errors:
            accept(row)
        if tasks:
            import ray

            started_ray = ensure_ray(cfg)
            keeper = None
            if cfg.adjudication.provider != "none":
                from pipeline.adjudicate.setup import start_budget_keeper

                keeper = start_budget_keeper(cfg.adjudication.budget_usd)
            crash_counter = ray.remote(num_cpus=0)(CrashCounter).remote()  # type: ignore[attr-defined]
            for row in _stream(cfg, tasks, schema, model_sha256, chat_handler, keeper, crash_counter):
                take(row)
        if batch is not None:
            results = batch.run()
            missing = AdjudicationResult(False, None, "batch_no_result", cfg.adjudication.model)
            for custom_id, row in held.items():  # every held page comes back, answered or not
                accept(_apply_batch_result(row, results.get(custom_id, missing)))
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


def _batch_runner(cfg: RunConfig, adjudicator: Any) -> Any:
    """Batch mode's driver side, after fetching batches a killed run left behind into the cache.

    ``adjudicator`` is the one built at start-up to check the API key: in batch mode a
    ``DeferredAdjudicator`` whose inner Anthropic client sends the batch.
    """
    adj = cfg.adjudication
    if adj.provider != "anthropic" or adj.mode != "batch":
        return None
    from pipeline.adjudicate.batch import BatchRunner, recover

    recover(adjudicator.inner, cfg.output / STATE_DIR)
    return BatchRunner(adjudicator.inner, cfg.output / STATE_DIR, cfg.run_id, adj.batch_poll_s, adj.batch_timeout_s)


def _apply_batch_result(row: dict[str, Any], result: Any) -> dict[str, Any]:
    """A held page row, completed with its Message Batch answer (or its reason for having none)."""
    why = (row.get("adjudication_reason") or "").rsplit(" -> ", 1)[0]
    row.update(adjudicated=result.adjudicated, adjudication_reason=f"{why} -> {result.reason}",
               api_input_tokens=result.input_tokens, api_output_tokens=result.output_tokens,
               api_cost_usd=round(result.cost_usd, 6))
    if result.adjudicated:
        row.update(status="ok", error=None, record_json=json.dumps(result.record, ensure_ascii=False))
    return row


def _stream(cfg: RunConfig, tasks: list[dict[str, Any]], schema: CompiledSchema, model_sha256: str,
            chat_handler: str | None, budget_keeper: Any = None, crash_counter: Any = None) -> Any:
    import ray

    pages = ray.data.from_items(tasks, override_num_blocks=max(1, min(len(tasks), 64)))
    results = pages.map_batches(
        PageWorker,
        fn_constructor_kwargs={"config_json": cfg.model_dump_json(), "schema_raw": schema.raw,
                               "model_sha256": model_sha256, "chat_handler": chat_handler,
                               "budget_keeper": budget_keeper, "crash_counter": crash_counter},
        compute=_actor_pool(cfg.workers),
        batch_size=1,
        num_cpus=cfg.model.n_threads,
        num_gpus=1 if cfg.model.n_gpu_layers != 0 and _cluster_has_gpus() else None,
    )
    yield from results.iter_rows()


CONCURRENT_PAGES = 2  # per actor: one in the model, the next one read ahead (see PageWorker)


def _actor_pool(workers: int) -> Any:
    """A fixed pool; each actor holds two pages at once: one in the model, the other being read or adjudicated.

    Not more: pages take seconds, so deeper queues only unbalance the tail of the run.
    """
    import ray

    try:
        return ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=CONCURRENT_PAGES,
                                          max_concurrent_calls_per_actor=CONCURRENT_PAGES,
                                          enable_true_multi_threading=True)
    except TypeError:  # Ray Data without concurrent calls: one page at a time per actor
        return ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=CONCURRENT_PAGES)


def _cluster_has_gpus() -> bool:
    import ray

    return float(ray.cluster_resources().get("GPU", 0)) >= 1


def _manifest(cfg: RunConfig, schema: CompiledSchema, summary: RunSummary, started_at: datetime,
              chat_handler: str | None, model_sha256: str, mmproj_sha256: str | None,
              latencies: list[float]) -> dict[str, Any]:
    return {
        "run_id": cfg.run_id,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "config": json.loads(cfg.model_dump_json()),
        "schema": {"path": schema.path, "sha256": schema.sha256},
        "model": {"path": str(cfg.model.path), "sha256": model_sha256,
                  "mmproj": str(cfg.model.mmproj) if cfg.model.mmproj else None,
                  "mmproj_sha256": mmproj_sha256, "chat_handler": chat_handler, "backend": cfg.backend},
        "job": cfg.job,
        "counts": {"files": summary.files, "pages": summary.pages, "ok": summary.ok,
                   "error": summary.errors, "documents": summary.documents,
                   "error_rate": round(summary.error_rate, 4)},
        "timings": {"seconds": summary.seconds, "pages_per_second": round(summary.pages_per_second, 4),
                    "mean_page_latency_ms": round(sum(latencies) / len(latencies), 2) if latencies else None},
        "skipped": summary.skipped,
        "repaired": summary.repaired,
        "outputs": {t: str(cfg.output / t) for t in TABLES},
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("extract", "llama_cpp_python", "ray", "pyarrow", "pymupdf", "jsonschema"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
