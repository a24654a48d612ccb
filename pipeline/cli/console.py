"""Consoles shared by the commands: tables on stdout, problems and progress on stderr."""

from __future__ import annotations

from rich.console import Console


def wide_console() -> Console:
    """stdout console; wide when piped, so tables in logs are not folded to 80 columns."""
    console = Console()
    return console if console.is_terminal else Console(width=160)
