"""What can be kept of an answer cut at ``--max-tokens``.

A small model on a long page sometimes loops over the rows until the token limit, and the cut
answer is not JSON.  Rather than lose the page, the answer is closed after its last complete
object (rows up to the cut), rows the loop repeated are removed, and the fields it never reached
are null.  The page is kept but marked ``truncated`` (and so flagged for review): the fields after
the cut, often the totals, are missing, not empty.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.schema.paths import resolve_ref

_CLOSER = {"{": "}", "[": "]"}


def close_cut_json(text: str) -> dict[str, Any] | None:
    """The longest prefix of ``text`` ending with a complete object, closed into a JSON object."""
    cuts: list[tuple[int, str]] = []  # (end of a complete object, the brackets still open after it)
    stack: list[str] = []
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in _CLOSER:
            stack.append(ch)
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
            if ch == "}" and stack:
                cuts.append((i, "".join(stack)))
    for end, still_open in reversed(cuts):
        try:
            value = json.loads(text[:end + 1] + "".join(_CLOSER[c] for c in reversed(still_open)))
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def without_repeats(value: Any) -> tuple[Any, int]:
    """``value`` with rows that repeat the row before them removed (a loop), and how many."""
    if isinstance(value, dict):
        removed = 0
        out = {}
        for key, sub in value.items():
            out[key], n = without_repeats(sub)
            removed += n
        return out, removed
    if isinstance(value, list):
        kept: list[Any] = []
        for row in value:
            if not (kept and isinstance(row, dict) and row == kept[-1]):
                kept.append(row)
        return kept, len(value) - len(kept)
    return value, 0


def with_missing_nulls(value: Any, node: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """Required properties the answer never reached, as null (an object that may not be null as an
    object of nulls, an array as empty); where the schema allows neither, validation refuses the
    salvaged record, as it should."""
    root = root or node
    node = resolve_ref(node, root)
    if isinstance(value, dict):
        props = node.get("properties") or {}
        filled = {k: with_missing_nulls(v, props.get(k) or {}, root) for k, v in value.items()}
        missing = {k: _empty(props.get(k) or {}, root) for k in node.get("required", []) if k not in value}
        return {**missing, **filled}
    if isinstance(value, list):
        items = node.get("items")
        return [with_missing_nulls(v, items, root) for v in value] if isinstance(items, dict) else value
    return value


def _empty(node: dict[str, Any], root: dict[str, Any]) -> Any:
    node = resolve_ref(node, root)
    types = node.get("type")
    types = types if isinstance(types, list) else [types]
    if "null" in types:
        return None
    if "object" in types:
        return with_missing_nulls({}, node, root)
    return [] if "array" in types else None
