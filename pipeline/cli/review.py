"""``extract review`` (the review web app) and ``extract export`` (the reviewed view, Label Studio)."""

from __future__ import annotations

import getpass
import ipaddress
import os
from pathlib import Path

import click

from pipeline.errors import ConfigError, OutputError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reviewer"


@click.command()
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs --token.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--token", envvar="EXTRACT_REVIEW_TOKEN", default=None,
              help="Secret every request must carry (printed in the URL once; a cookie after). "
                   "Env: EXTRACT_REVIEW_TOKEN.")
@click.option("--reviewer", default=None, help="Name written with each correction [default: your login name].")
@click.option("--schema", default=None, help="Schema to type the fields by [default: the one the last run recorded].")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Another name the server answers to (the machine's DNS name when --host 0.0.0.0); "
                   "loopback names and --host always are, any other Host header gets 400.")
def review(output: Path, host: str, port: int, token: str | None, reviewer: str | None, schema: str | None,
           allow_hosts: tuple[str, ...]) -> None:
    """Review OUTPUT's flagged documents in a browser: the page with a box on each value, the values
    in a form, corrections written to OUTPUT's corrections table."""
    if not is_loopback(host) and not token:
        raise ConfigError(f"--host {host} exposes the review server beyond this machine: set --token "
                          "(or EXTRACT_REVIEW_TOKEN) to a secret, e.g. $(openssl rand -hex 16)")
    if token is not None and len(token) < 8:
        raise ConfigError("--token must be at least 8 characters")
    import uvicorn

    from pipeline.review.app import create_app

    app = create_app(output, reviewer or _reviewer(), token, schema, hosts=(host, *allow_hosts))
    note = getattr(app.state, "note", None)
    if note:
        click.echo(f"warning: fields are typed by their values: {note}", err=True)
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"review {output} at http://{shown_host}:{port}/" + (f"?token={token}" if token else ""))
    click.echo("press Ctrl+C to stop")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@click.group()
def export() -> None:
    """Write OUTPUT's documents for others: as reviewed, or as Label Studio tasks."""


@export.command("reviewed")
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--to", "target", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Parquet file to write.")
def export_reviewed(output: Path, target: Path) -> None:
    """The documents table with every review applied (reviewed, reviewed_by, reviewed_at, corrected_fields)."""
    from pipeline.review.corrections import reviewed_table
    from pipeline.review.view import OutputView
    from pipeline.sink.parquet import write_parquet_atomic

    view = OutputView(output)
    view.documents()
    table = reviewed_table(output, view.record_names)
    try:
        write_parquet_atomic(target.resolve(), table)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    reviewed = sum(bool(v) for v in table.column("reviewed").to_pylist())
    click.echo(f"{target}: {table.num_rows} documents, {reviewed} reviewed by a person")


@export.command("label-studio")
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--to", "target", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder for tasks.json, config.xml and images/.")
@click.option("--image-prefix", default="/data/local-files/?d=images/", show_default=True,
              help="What precedes an image's file name in a task (Label Studio's local-files URL, or your host).")
def export_label_studio(output: Path, target: Path, image_prefix: str) -> None:
    """Label Studio tasks, one per page, with the machine's boxes and values as predictions."""
    from pipeline.review.labelstudio import export as write
    from pipeline.review.view import OutputView

    counts = write(OutputView(output), target, image_prefix)
    click.echo(f"{target / 'tasks.json'}: {counts['tasks']} tasks, {counts['labels']} field labels"
               + (f", {counts['documents_skipped']} documents without a readable source left out"
                  if counts["documents_skipped"] else ""))
    click.echo(f"labelling interface: {target / 'config.xml'}; images: {target / 'images'}{os.sep}")
