"""The ``extract`` command line.

Every user mistake surfaces as an ``ExtractError`` (a ``click.ClickException``): one line on
stderr, exit code 2.  Page failures are not user mistakes: they are rows in the output and a
count in the summary.  Each command lives in its own module; this one only assembles them.
"""

from __future__ import annotations

import sys

import click

from pipeline import __version__
from pipeline.cli.doctor import doctor
from pipeline.cli.jobs import jobs
from pipeline.cli.models import models, samples
from pipeline.cli.output import eval_command, show
from pipeline.cli.review import export, review
from pipeline.cli.run import run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="extract")
def main() -> None:
    """Extract JSON-Schema records from folders of PDFs and images with a local model.

    Pages are read as text (text layer or OCR) by a llama.cpp text model, or as images by a
    vision-language model, constrained to your schema, voted over several samples, checked by
    your rules (the hard pages optionally settled by an API model), and written to typed
    Parquet with provenance.
    """


for command in (run, show, eval_command, review, export, models, samples, jobs, doctor):
    main.add_command(command)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
