"""JSON Schema -> Arrow types, and JSON values -> Arrow-ready Python values.

Analysts read the Parquet with DuckDB, pandas or Polars and should get typed columns with no
casts: nested objects become structs, arrays lists, ``format: date`` date32,
``format: date-time`` UTC timestamps, numbers float64, integers int64.  Nullable unions
(``["string", "null"]``) map to the non-null type; anything that has no single type (a union
of several non-null types) is stored as its JSON text.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa

from pipeline.schema.paths import resolve_ref

_PRIMITIVES = {
    "string": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
}


def _non_null_types(node: dict[str, Any]) -> list[Any]:
    """Candidate subschemas of a node, with null removed."""
    if "anyOf" in node:
        return [s for s in node["anyOf"] if s.get("type") != "null"]
    types = node.get("type")
    if isinstance(types, list):
        rest = [t for t in types if t != "null"]
        return [{**node, "type": t} for t in rest]
    if types is None and "enum" in node:
        kinds = {type(v) for v in node["enum"] if v is not None}
        if kinds == {str}:
            return [{"type": "string"}]
        if kinds and kinds <= {int, float}:
            return [{"type": "number" if float in kinds else "integer"}]
        return [{}]
    if types is None and "const" in node:
        return [{"type": _json_type(node["const"])}]
    return [node]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "json"


def arrow_type(node: dict[str, Any], root: dict[str, Any]) -> pa.DataType:
    node = resolve_ref(node, root)
    options = [resolve_ref(o, root) for o in _non_null_types(node)]
    if len(options) != 1:
        return pa.string()  # JSON text
    node = options[0]
    t = node.get("type")
    if t == "object":
        props = node.get("properties", {})
        return pa.struct([pa.field(k, arrow_type(v, root)) for k, v in props.items()])
    if t == "array":
        return pa.list_(arrow_type(node.get("items", {}), root))
    if t == "string" and node.get("format") == "date":
        return pa.date32()
    if t == "string" and node.get("format") == "date-time":
        return pa.timestamp("us", tz="UTC")
    if t in _PRIMITIVES:
        return _PRIMITIVES[t]
    return pa.string()


def record_fields(schema: dict[str, Any]) -> list[pa.Field]:
    """One Arrow field per top-level property of the schema."""
    return [pa.field(name, arrow_type(sub, schema)) for name, sub in schema["properties"].items()]


def to_arrow_value(value: Any, dtype: pa.DataType) -> Any:
    """Convert a validated JSON value to what pyarrow expects for ``dtype``."""
    if value is None:
        return None
    if pa.types.is_map(dtype):
        return list(value.items())
    if pa.types.is_struct(dtype):
        return {f.name: to_arrow_value(value.get(f.name), f.type) for f in dtype}
    if pa.types.is_list(dtype):
        return [to_arrow_value(v, dtype.value_type) for v in value]
    if (pa.types.is_date32(dtype) or pa.types.is_timestamp(dtype)) and not isinstance(value, str):
        return value  # already a date/datetime (provenance columns)
    if pa.types.is_date32(dtype):
        return date.fromisoformat(value)
    if pa.types.is_timestamp(dtype):
        parsed = datetime.fromisoformat(value)
        return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if pa.types.is_string(dtype) and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if pa.types.is_floating(dtype):
        return float(value)
    return value
