"""``extract run``'s options, generated from ``Settings``: one declaration per setting.

Click only collects the values (as given, unconverted); ``Settings`` converts and checks
them, so a bad value is the same one-line error, exit 2, on the command line and in a job file.
Help text shows each setting's default and bounds from the same declaration.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import annotated_types
import click
from pydantic.fields import FieldInfo

from pipeline.config.settings import Settings, flag_of


class Given(click.ParamType):
    """Passes the value through unchanged: ``Settings`` is the one place that converts and checks."""

    def __init__(self, metavar: str) -> None:
        self.name = metavar

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value


def _extra(info: FieldInfo) -> dict[str, Any]:
    return info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}


def _members(annotation: Any) -> list[Any]:
    """The non-None members of a union (``int | None`` -> [int])."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _metavar(annotation: Any) -> str:
    words: list[str] = []
    for member in _members(annotation):
        base = typing.get_origin(member)
        if base is typing.Literal:
            words.extend(str(v) for v in typing.get_args(member))
        elif base is typing.Annotated:
            words.append(_metavar(typing.get_args(member)[0]))
        else:
            words.append({int: "INTEGER", float: "NUMBER", str: "TEXT", Path: "PATH"}.get(member, "VALUE"))
    return "|".join(words) if len(words) > 1 else words[0]


def _bounds(info: FieldInfo) -> str:
    """'1..9', '>= 16', '> 0' from the field's constraints (union members included)."""
    found: dict[str, Any] = {}
    metadata = list(info.metadata)
    for member in _members(info.annotation):
        if typing.get_origin(member) is typing.Annotated:
            for extra in typing.get_args(member)[1:]:
                metadata.extend(getattr(extra, "metadata", [extra]))
    for item in metadata:
        for kind in ("ge", "gt", "le", "lt"):
            if isinstance(item, getattr(annotated_types, kind.capitalize())):
                found[kind] = getattr(item, kind)
    low = f">= {found['ge']}" if "ge" in found else f"> {found['gt']}" if "gt" in found else None
    high = f"<= {found['le']}" if "le" in found else f"< {found['lt']}" if "lt" in found else None
    if "ge" in found and "le" in found:
        return f"{found['ge']}..{found['le']}"
    return ", ".join(b for b in (low, high) if b)


def _help(info: FieldInfo) -> str:
    extra = _extra(info)
    notes = []
    if info.is_required():
        notes.append("required")
    elif extra.get("auto"):
        notes.append(f"default: {extra['auto']}")
    elif info.default is not None and info.default is not False:
        notes.append(f"default: {info.default}")
    if bounds := _bounds(info):
        notes.append(bounds)
    if extra.get("env"):
        notes.append(f"env {extra['env']}")
    return (info.description or "") + (f" [{'; '.join(notes)}]" if notes else "")


def setting_option(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The click decorator of one setting (``extract run`` takes them all; ``jobs run`` a few)."""
    info = Settings.model_fields[name]
    extra = _extra(info)
    if extra.get("argument"):
        return click.argument(name, nargs=-1, type=Given("INPUT"))
    flag = flag_of(name)
    names = [flag, *([extra["short"]] if extra.get("short") else []), name]  # the bare name: the key it fills
    if info.annotation is bool:
        if info.default:  # on by default: the flag pair turns it off
            names = [f"{flag}/--no-{flag[2:]}", name]
        return click.option(*names, is_flag=True, default=None, help=_help(info))
    return click.option(*names, type=Given(_metavar(info.annotation)), default=None, envvar=extra.get("env"),
                        help=_help(info))


def settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Attach one click parameter per setting (job-file-only settings excepted) to ``command``."""
    for name, info in reversed(Settings.model_fields.items()):
        if _extra(info).get("cli", True):
            command = setting_option(name)(command)
    return command


def given(values: dict[str, Any]) -> dict[str, Any]:
    """The values a user gave (click passes None for the rest): Settings' defaults fill those."""
    out = {k: v for k, v in values.items() if v is not None and v != ()}
    if "inputs" in out:
        out["inputs"] = list(out["inputs"])
    return out
