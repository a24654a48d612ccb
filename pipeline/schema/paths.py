"""Field paths (``line_items[2].amount``) and ``$ref``s: the one way a record's value and a schema's
node are found.

Disputes, sources, doubts, corrections and truth all name a field by such a path; walking it in
one place keeps every stage reading the same value for the same name.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.errors import SchemaError

Node = dict[str, Any] | None
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_PATH = re.compile(r"[^.\[\]]+(?:\[\d+\]|\.[^.\[\]]+)*")


def resolve_ref(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref`` pointers (``#/$defs/party``) to the subschema they name."""
    for _ in range(64):
        if "$ref" not in node:
            return node
        target: Any = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    raise SchemaError("$ref chain too deep (recursive schema?)")


def has_type(node: dict[str, Any], name: str) -> bool:
    """Whether a schema node's ``type`` (one name or a list) includes ``name``."""
    t = node.get("type")
    return name in t if isinstance(t, list) else t == name


def is_path(path: str) -> bool:
    return bool(_PATH.fullmatch(path))


def steps(path: str) -> list[str | int]:
    """``line_items[2].amount`` -> ['line_items', 2, 'amount']."""
    return [int(m.group(2)) if m.group(2) else m.group(1) for m in _STEP.finditer(path)]


def at_path(record: Any, path: str) -> Any:
    """The value at ``path``, or None where the record has nothing there."""
    value = record
    for step in steps(path):
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and step < len(value) else None
        else:
            value = value.get(step) if isinstance(value, dict) else None
    return value


def child(node: Node, key: str | None, root: dict[str, Any] | None) -> Node:
    """The schema node of a property (``key``) or of an array's items (``key`` None)."""
    if node is None:
        return None
    node = resolve_ref(node, root or node)
    options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
    if options:
        node = resolve_ref(options[0], root or node)
    if key is None:
        items = node.get("items")
        return items if isinstance(items, dict) else None
    props = node.get("properties")
    sub = props.get(key) if isinstance(props, dict) else None
    return sub if isinstance(sub, dict) else None


def node_at(schema: dict[str, Any] | None, path: str) -> Node:
    """The schema node at ``path`` (an index step is the array's items), or None."""
    node: Node = schema
    for step in steps(path):
        node = child(node, None if isinstance(step, int) else step, schema)
    return node


KIND_TABLES = ("x-expected", "x-kind-fields")  # document kind -> field paths (rules.expected)


def kind_paths(schema: dict[str, Any], key: str) -> dict[str, list[str]]:
    """A schema's table of field paths per document kind (``x-expected``, ``x-kind-fields``)."""
    table = schema.get(key) or {}
    if not isinstance(table, dict) or not all(
            isinstance(v, list) and all(isinstance(p, str) and is_path(p) for p in v) for v in table.values()):
        raise SchemaError(f"{key} must map document kinds to lists of field paths; got {table!r}")
    return table
