"""Field paths (``line_items[2].amount``) and ``$ref``s: the one way a record's value and a schema's
node are found.

Disputes, sources, doubts, corrections and truth all name a field by such a path; walking it in
one place keeps every stage reading the same value for the same name.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
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


def types_of(node: dict[str, Any]) -> list[Any]:
    """A schema node's ``type`` as a list (one name or a list of them; [None] where it has none)."""
    t = node.get("type")
    return t if isinstance(t, list) else [t]


def has_type(node: dict[str, Any], name: str) -> bool:
    """Whether a schema node's ``type`` (one name or a list) includes ``name``."""
    return name in types_of(node)


def bare(node: Node, root: dict[str, Any] | None) -> Node:
    """The node of a value, ``$ref``s followed and its ``anyOf [.., null]`` wrapper taken off
    (the first non-null branch): what a nullable field holds when it holds something."""
    if node is None:
        return None
    node = resolve_ref(node, root or node)
    options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
    return resolve_ref(options[0], root or node) if options else node


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


def with_value(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``record`` with ``path`` set (rows and objects created on the way: an added row)."""
    out = copy.deepcopy(record)
    parts = steps(path)
    target: Any = out
    for step, nxt in zip(parts, parts[1:], strict=False):
        fresh: Any = [] if isinstance(nxt, int) else {}
        if isinstance(step, int):
            while len(target) <= step:
                target.append(None)
            if not isinstance(target[step], (dict, list)):
                target[step] = fresh
            target = target[step]
        else:
            if not isinstance(target.get(step), (dict, list)):
                target[step] = fresh
            target = target[step]
    last = parts[-1]
    if isinstance(last, int):
        while len(target) <= last:
            target.append(None)
    target[last] = value
    return out


def leaves(value: Any, node: Node, root: dict[str, Any] | None, path: str = "") -> Iterator[tuple[str, Any, Node]]:
    """Every value of a record that is no object or array, with its path and schema node."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from leaves(sub, child(node, key, root), root, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from leaves(sub, child(node, None, root), root, f"{path}[{i}]")
    else:
        yield path, value, node


def child(node: Node, key: str | None, root: dict[str, Any] | None) -> Node:
    """The schema node of a property (``key``) or of an array's items (``key`` None)."""
    node = bare(node, root)
    if node is None:
        return None
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


def x_labels(node: Any, where: str) -> list[str] | None:
    """A schema node's ``x-labels`` (None where it has none), checked: a non-empty list of words."""
    labels = node.get("x-labels") if isinstance(node, dict) else None
    if labels is not None and (not isinstance(labels, list) or not labels
                               or not all(isinstance(x, str) and x.strip() for x in labels)):
        raise SchemaError(f"x-labels of {where} must be a non-empty list of words; got {labels!r}")
    return labels


KIND_TABLES = ("x-expected", "x-kind-fields")  # document kind -> field paths (rules.expected)


def kind_paths(schema: dict[str, Any], key: str) -> dict[str, list[str]]:
    """A schema's table of field paths per document kind (``x-expected``, ``x-kind-fields``)."""
    table = schema.get(key) or {}
    if not isinstance(table, dict) or not all(
            isinstance(v, list) and all(isinstance(p, str) and is_path(p) for p in v) for v in table.values()):
        raise SchemaError(f"{key} must map document kinds to lists of field paths; got {table!r}")
    return table
