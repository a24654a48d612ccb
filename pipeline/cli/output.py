"""``extract show`` and ``extract eval``: reading a run's output back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from pipeline.cli.console import wide_console
from pipeline.errors import OutputError


@click.command()
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--table", "which", type=click.Choice(["documents", "pages", "errors", "corrections"]),
              default="documents", show_default=True,
              help="Which table to show (corrections: what people changed in 'extract review').")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1), help="Rows to show.")
@click.option("--columns", default="source_path,page_number,status,invoice_number,issue_date,"
              "currency,total_amount,line_items,error", show_default=True,
              help="Comma-separated columns (missing ones are skipped).")
def show(output: Path, which: str, limit: int, columns: str) -> None:
    """Print the first records of a run's OUTPUT folder as a table."""
    from pipeline.sink.dataset import read_table

    if which == "corrections":
        from pipeline.review.corrections import read

        table = read(output)
        names = columns.split(",")
        if not any(c in table.column_names for c in names if c != "source_path"):  # the documents' default columns
            names = ["source_path", "action", "field_path", "old_value", "new_value", "reviewer", "reviewed_at"]
    else:
        table = read_table(output, which)
        names = columns.split(",")
    wanted = [c for c in names if c in table.column_names]
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


@click.command("eval")
@click.option("--truth", "truth_path", required=True, type=click.Path(path_type=Path),
              help="Folder of ground-truth NAME.json files (matched to source files NAME.*); 'einvoice': "
                   "each document's own e-invoice XML (free ground truth; run with --einvoice ignore); "
                   "'corrections': the documents people approved in 'extract review', as they left them.")
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--json", "json_path", type=click.Path(path_type=Path),
              help="Where to write the report as JSON [default: OUTPUT/eval.json].")
def eval_command(truth_path: Path, output: Path, json_path: Path | None) -> None:
    """Field-level precision, recall and F1 of OUTPUT's documents against ground truth."""

    from pipeline.eval.score import evaluate

    report = evaluate(truth_path, output)
    data = report.to_json()
    table = Table(title=f"{output}: {report.documents} documents ({report.documents_missing} missing)")
    for column in ("field", "stated", "accuracy", "precision", "recall", "F1", "tp", "fp", "fn"):
        table.add_column(column, justify="left" if column == "field" else "right")
    for name, counts in [*sorted(report.fields.items()), ("HEADER", report.header), ("OVERALL", report.overall)]:
        table.add_row(name, str(counts.stated), f"{counts.accuracy:.3f}", f"{counts.precision:.3f}",
                      f"{counts.recall:.3f}", f"{counts.f1:.3f}", str(counts.tp), str(counts.fp), str(counts.fn),
                      style="bold" if name in ("HEADER", "OVERALL") else None)
    console = wide_console()
    console.print(table)
    flags = data["flags"]
    console.print(f"needs_review: {flags['flagged']} of {flags['documents']} documents flagged, "
                  f"{flags['wrong']} have a wrong stated field; flag precision {flags['precision']}, "
                  f"recall {flags['recall']}")
    speed = data["pages_per_second"]
    cost = data["api_cost_per_page_usd"]
    console.print(f"values compared by {report.compared_by}")
    if report.documents_from_xml:
        console.print(f"[yellow]note:[/] {report.documents_from_xml} documents were read from their XML and are "
                      "left out; run with --einvoice ignore to measure the model on them")
    for problem in report.manifests_unreadable:
        console.print(f"[yellow]warning:[/] run manifest left out: {problem}")
    console.print(f"pages/s: {speed if speed is not None else 'n/a'}   "
                  f"API cost per page: {f'${cost:.5f}' if cost is not None else 'n/a (local only)'}")
    target = json_path or output / "eval.json"
    try:
        target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    console.print(f"report: {target}")


