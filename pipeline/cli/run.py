"""``extract run``: the options come from ``Settings``; the same machinery serves ``extract jobs run``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.cli.options import given, settings_options
from pipeline.config.settings import Settings, cpu_count, options
from pipeline.errors import OutputError
from pipeline.results import PageResult, work_line
from pipeline.run.resolve import resolve


@click.command()
@settings_options
def run(**values: Any) -> None:
    """Extract records from INPUTS (PDF/PNG/JPEG/TIFF files, e-invoice XML, folders or globs) into OUTPUT.

    Incremental: documents already in OUTPUT with the same settings are skipped (by content
    hash), so running it again over a growing folder does only the new files.  Every option
    is also a job-file key (its name with underscores: --max-tokens is max_tokens).
    """
    run_options(options(given(values), origin="cli"))


def run_options(opts: Settings, base: Path | None = None) -> None:
    """Shared by ``extract run`` and ``extract jobs run``: the same machinery, the same output."""
    from pipeline.run.driver import execute_run
    from pipeline.schema.compiled import load_schema

    err = Console(stderr=True)
    cfg = resolve(opts, base)
    schema = load_schema(cfg.schema_path)
    if cfg.workers * cfg.model.n_threads > cpu_count() and not cfg.ray_address:
        err.print(f"[yellow]warning:[/] {cfg.workers} workers x {cfg.model.n_threads} threads exceeds "
                  f"{cpu_count()} cores; llama.cpp threads busy-wait, so expect a slowdown")
    if cfg.output.exists() and not cfg.output.is_dir():
        raise OutputError(f"output {cfg.output} exists and is not a folder")

    log = _ProgressLog(err) if not err.is_terminal else None  # cron, a container log: a line a minute
    columns = (TextColumn("[bold]extract"), BarColumn(), MofNCompleteColumn(),
               TextColumn("pages"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    with Progress(*columns, console=err, disable=not err.is_terminal) as bar:
        task_id = bar.add_task("pages", total=None, rate="")

        def on_row(page: PageResult, total: int) -> None:
            bar.update(task_id, total=total, advance=1)
            elapsed = bar.tasks[0].elapsed or 0.0
            done = bar.tasks[0].completed
            bar.update(task_id, rate=f"{done / elapsed:.2f} pages/s" if elapsed else "")
            if log:
                log.row(total)

        summary = execute_run(cfg, schema, progress=on_row)

    out = Console()
    table = Table(title=f"run {summary.run_id}", show_header=False)
    docs = summary.documents
    manifest = json.loads(Path(summary.manifest_path).read_text())
    api = manifest.get("adjudication", {})
    adjudication = (f"{api['pages_adjudicated']} pages, ${api['cost_usd']:.4f}" if api.get("provider") != "none"
                    else "off (local only)")
    documents = f"{sum(docs.values())} ({docs['ok']} ok, {docs['partial']} partial, {docs['error']} error)"
    skipped = summary.skipped
    for key, value in (("documents", documents), ("adjudication", adjudication),
                       ("pages", f"{summary.pages} ({summary.ok} ok, {summary.errors} errors)"),
                       ("skipped", f"{skipped['done']} done before, {skipped['errors_kept']} earlier errors, "
                                   f"{skipped['duplicate']} duplicate files"),
                       ("fallbacks", _fallbacks(manifest.get("traces", {}))),
                       ("files", summary.files), ("time", f"{summary.seconds:.1f} s"),
                       ("work", work_line(manifest["work"]) if manifest.get("work") else "-"),
                       ("speed", f"{summary.pages_per_second:.2f} pages/s"),
                       ("output", f"{summary.output}/{{documents,pages,errors}}/run_date=*/"),
                       ("manifest", summary.manifest_path)):
        table.add_row(key, str(value))
    out.print(table)
    flagged = manifest.get("traces", {}).get("documents_needs_review") or 0
    if flagged:
        out.print(f"{flagged} documents need a person: extract review {summary.output}")
    if summary.repaired.get("parts_dropped") or summary.repaired.get("lock_taken_over"):
        err.print(f"recovered from an interrupted run: {summary.repaired}")
    if manifest.get("traces", {}).get("pages_per_worker_reason"):
        err.print(f"[yellow]note:[/] {manifest['traces']['pages_per_worker_reason']}")
    failed = summary.status == "failed"
    # One line for cron logs.
    click.echo(f"extract: job={cfg.job or '-'} run={summary.run_id} status={'FAILED' if failed else 'ok'} "
               f"pages={summary.pages} ok={summary.ok} errors={summary.errors} "
               f"error_rate={summary.error_rate:.3f} skipped={sum(skipped.values())} "
               f"documents={sum(docs.values())} cost_usd={summary.api_cost_usd:.4f} seconds={summary.seconds:.1f}")
    if failed:
        err.print(f"[red]run failed: {summary.failure}[/]")
        sys.exit(1)


PROGRESS_EVERY_S = 60.0


class _ProgressLog:
    """Progress as plain lines where no bar can be drawn: at most one a minute, so a nightly
    log shows the run is alive, how far it is and when it should end."""

    def __init__(self, err: Console) -> None:
        self.err = err
        self.started = self.last = time.monotonic()
        self.done = 0

    def row(self, total: int) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_S and self.done < total:
            return
        self.last = now
        rate = self.done / max(now - self.started, 1e-9)
        eta = (total - self.done) / rate if rate > 0 else 0.0
        self.err.print(f"extract progress: {self.done}/{total} pages, {rate * 3600:.0f} pages/h, "
                       f"ETA {eta / 60:.0f} min", highlight=False, soft_wrap=True)


def _fallbacks(traces: dict[str, Any]) -> str:
    """The run's fallbacks in one line (each page and document row carries its own)."""
    nulls: dict[str, int] = traces.get("normalize_nulls") or {}
    worst = max(sorted(nulls), key=lambda name: nulls[name]) if nulls else None
    parts = [f"{traces.get('pages_fallback', 0)} pages kept the greedy answer (vote invalid)",
             f"{traces.get('dropped_rows', 0)} rows dropped as restated totals",
             f"{sum(nulls.values())} unreadable values nulled" + (f" (most in {worst})" if worst else ""),
             f"{traces.get('repairs', 0)} values repaired by the rules from the page's amounts",
             f"{traces.get('ungrounded_fields', 0)} values printed nowhere on their page (disputed)"]
    return "; ".join(parts)
