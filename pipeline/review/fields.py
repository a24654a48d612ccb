"""A record's fields as a reviewer sees them: paths, types, and values typed in by a person.

Paths are the ones ``field_sources`` and ``field_confidence`` use (``seller.name``,
``line_items[2].amount``), so a value, its box on the page and its samples' alternatives meet
on one key.  What a person types is read by the field's schema type (an amount as a number,
"3.1.2026" as a date), never by its name; what cannot be read is refused with a reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pipeline.consensus.compare import Node, field_kind
from pipeline.consensus.normalize import normalize_amount, normalize_date
from pipeline.schema.paths import at_path, bare, child, has_type, is_path, with_value
from pipeline.schema.paths import steps as path_steps


@dataclass(frozen=True)
class Field:
    path: str
    kind: str  # date, number, integer, boolean, choice, text
    value: Any
    choices: tuple[str, ...] = ()
    row: int | None = None  # index of the array row it belongs to, for a table in the form


class ValueRefused(ValueError):
    """A typed-in value that the field's type cannot hold; its message is shown to the reviewer."""


def steps(path: str) -> list[str | int]:
    """``line_items[2].amount`` -> ['line_items', 2, 'amount']; a malformed path is refused."""
    if not is_path(path):
        raise ValueRefused(f"not a field path: {path!r}")
    return path_steps(path)


def get_path(record: Any, path: str) -> Any:
    """The value at a path a person's form named (refused where it is no path)."""
    return at_path(record, path) if steps(path) else None


def set_path(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``record`` with a path a person's form named set (refused where it is no path)."""
    return with_value(record, path, value) if steps(path) else record


def as_json(value: Any) -> Any:
    """A value read back from Parquet as JSON holds it (dates as ISO text)."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return value.isoformat() if hasattr(value, "isoformat") else value


def record_of(row: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The record columns of a documents row, as JSON."""
    return {name: as_json(row.get(name)) for name in names}


def drop_empty_rows(record: dict[str, Any]) -> dict[str, Any]:
    """Rows a reviewer emptied are removed: clearing every field of a row deletes it."""
    out = {}
    for key, value in record.items():
        if isinstance(value, list) and value and all(isinstance(r, dict) or r is None for r in value):
            value = [r for r in value if isinstance(r, dict) and any(v not in (None, "") for v in r.values())]
        out[key] = value
    return out


def form_fields(record: dict[str, Any] | None, schema: dict[str, Any] | None) -> list[Field]:
    """Every leaf of the schema, with the record's value: arrays of objects get one row per record
    row and one empty row more, so a missed line can be added."""
    record = record or {}
    out: list[Field] = []
    props = (schema or {}).get("properties") or {k: None for k in record}
    for name in props:
        _leaves(record.get(name), child(schema, name, schema) if schema else None, schema, name, None, out)
    return out


def _leaves(value: Any, node: Node, root: dict[str, Any] | None, path: str, row: int | None,
            out: list[Field]) -> None:
    kind = _kind(node, root, value)
    if kind == "object":
        props = (bare(node, root) or {}).get("properties") or (value or {})
        for key in props:
            sub = value.get(key) if isinstance(value, dict) else None
            _leaves(sub, child(node, key, root), root, f"{path}.{key}", row, out)
        return
    if kind == "array":
        items = child(node, None, root)
        rows = value if isinstance(value, list) else []
        objects = _kind(items, root, rows[0] if rows else None) == "object"
        for i, sub in enumerate([*rows, None] if objects else rows):
            _leaves(sub, items, root, f"{path}[{i}]", i, out)
        return
    choices = tuple(str(c) for c in (bare(node, root) or {}).get("enum", []) if c is not None)
    out.append(Field(path, "choice" if choices else kind, value, choices, row))


def _kind(node: Node, root: dict[str, Any] | None, value: Any) -> str:
    kind = field_kind(node, root)
    if kind == "unknown":  # no schema: by the value
        return ("object" if isinstance(value, dict) else "array" if isinstance(value, list) else
                "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else "text")
    if kind == "number" and has_type(bare(node, root) or {}, "integer"):
        return "integer"
    return "text" if kind == "currency" else kind


def parse_value(text: str, node: Node, root: dict[str, Any] | None) -> Any:
    """What a person typed, as the field's type holds it; "" is "not on the document" (null)."""
    text = text.strip()
    if not text:
        return None
    kind = _kind(node, root, None) if node is not None else "text"
    if kind in ("number", "integer"):
        number = normalize_amount(text)
        if number is None:
            raise ValueRefused(f"{text!r} is not a number")
        if kind == "integer":
            if number != int(number):
                raise ValueRefused(f"{text!r} is not a whole number")
            return int(number)
        return number
    if kind == "date":
        iso = normalize_date(text)
        if iso is None:
            raise ValueRefused(f"{text!r} is not a date (write it as YYYY-MM-DD)")
        return iso
    if kind == "boolean":
        if text.lower() in ("true", "yes", "1", "ja", "oui"):
            return True
        if text.lower() in ("false", "no", "0", "nein", "non"):
            return False
        raise ValueRefused(f"{text!r} is not yes or no")
    choices = [c for c in (bare(node, root) or {}).get("enum", []) if c is not None]
    if choices and text not in [str(c) for c in choices]:
        raise ValueRefused(f"{text!r} is not one of {', '.join(map(str, choices))}")
    return text


def shown(value: Any) -> str:
    """A value as the form shows it (and as a person would type it)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and abs(value) < 1e15:  # 15, 3845.70, 0.125: as a person writes them
        return str(int(value)) if value == int(value) else f"{value:.2f}" if round(value, 2) == value else repr(value)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def generic(path: str) -> str:
    """``line_items[2].amount`` -> ``line_items.amount``: the field, whatever the row."""
    return re.sub(r"\[\d+\]", "", path)
