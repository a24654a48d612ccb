"""``extract jobs``: nightly jobs from ``jobs/NAME.toml``, run by the same machinery as ``extract run``."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from pipeline.cli.options import given, setting_option


@click.group()
def jobs() -> None:
    """Nightly jobs: jobs/NAME.toml files with the options of 'extract run' [env EXTRACT_JOBS_DIR]."""


@jobs.command("list")
def jobs_list() -> None:
    """The jobs in the jobs folder, with their inputs and output."""
    from pipeline.cli.console import wide_console
    from pipeline.jobs.files import jobs_dir, list_jobs

    table = Table(title=f"jobs ({jobs_dir()})")
    for column in ("name", "inputs", "output", "model", "problem"):
        table.add_column(column, overflow="fold")
    for job in list_jobs():
        if isinstance(job, tuple):
            table.add_row(job[0].stem, "", "", "", job[1])
        else:
            table.add_row(job.name, ", ".join(job.options.inputs), str(job.output), job.options.model or "-", "")
    wide_console().print(table)


@jobs.command("run")
@click.argument("name")
@setting_option("force")
@setting_option("retry_errors")
@setting_option("limit")
def jobs_run(name: str, **overrides: Any) -> None:
    """Run job NAME (jobs/NAME.toml, or a path to a .toml file); the options override the file.

    Exit code 0: ok; 1: the run failed (no page ok, or the error rate above the job's max_error_rate);
    2: usage or config error; 3: the model runtime crashes on this machine (nothing written).
    """
    from pipeline.cli.run import run_options
    from pipeline.jobs.files import load_job

    job = load_job(name, **given(overrides))
    run_options(job.options, job.base)


@jobs.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def jobs_status(name: str, as_json: bool) -> None:
    """What job NAME's output holds, its last run, and whether it is running now."""
    from pipeline.cli.console import wide_console
    from pipeline.jobs.files import job_status, load_job

    status = job_status(load_job(name))
    if as_json:
        click.echo(json.dumps(status, indent=2, default=str))
        return
    table = Table(title=f"job {status['job']}", show_header=False)
    last = status["last_run"]
    running = status["running"]
    table.add_row("output", status["output"])
    table.add_row("documents done", ", ".join(f"{n} {s}" for s, n in sorted(status["documents"].items())) or "none")
    table.add_row("runs", str(status.get("runs", 0)))
    table.add_row("last run", "-" if not last else
                  f"{last['run_id']} finished {last['finished_at']}: {last['counts']['pages']} pages, "
                  f"{last['counts']['error']} errors, {last['seconds']:.0f} s")
    table.add_row("running now", "no" if not running else
                  f"run {running.get('run_id')} (pid {running.get('pid')} on {running.get('host')})")
    for problem in status.get("manifests_unreadable", []):
        table.add_row("warning", f"run manifest left out: {problem}")
    wide_console().print(table)
