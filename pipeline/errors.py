"""User-facing errors.

Everything a user can get wrong (a schema, an input path, a model file, an output folder) is
raised as an ``ExtractError`` whose message is one line that says what to do.  The CLI maps
them to ``click.ClickException`` with exit code 2, so users never see a traceback for bad
input.  Failures of a single page are *not* errors of this kind: they become error rows.

Exit codes: 0 a run with ok pages (and an error rate within ``max_error_rate``); 1 a run that
failed (no page ok, or too many errors); 2 a usage or configuration error; 3 the model runtime
crashes (the start-up probe, or workers dying on page after page): fix the install, not the input.
"""

from __future__ import annotations

import click


class ExtractError(click.ClickException):
    """A usage or configuration problem, reported as one line, exit code 2."""

    exit_code = 2


class SchemaError(ExtractError):
    """The JSON Schema is missing, invalid, or cannot be enforced by a grammar."""


class InputError(ExtractError):
    """No inputs, or inputs that cannot be read at all."""


class ModelError(ExtractError):
    """The model file is missing or cannot be loaded."""


class OutputError(ExtractError):
    """The output folder cannot be created or written."""


class ConfigError(ExtractError):
    """A configuration value is invalid."""


class RuntimeCrash(ExtractError):
    """llama.cpp (or another native part) kills its process: a broken install or machine, not a page.

    Nothing is written as done or quarantined; the next run, once fixed, does the same pages.
    """

    exit_code = 3


def missing_model_message(path: object) -> str:
    return (
        f"model file not found: {path}. Create a tiny test model with "
        "'extract models make-tiny models/tiny' or pass --model PATH to a GGUF file"
    )
