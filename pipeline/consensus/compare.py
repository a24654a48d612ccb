"""Whether two values of a field are the same, decided by the field's schema, never by its name.

Consensus (do the samples agree?) and evaluation (is the answer right?) ask the same question,
so they share this one comparator.  What kind of value a field holds comes from its schema
node: ``format: date`` / ``date-time`` compare as dates, ``number`` / ``integer`` as amounts
within 0.01, ``"x-normalize": "currency"`` as ISO codes, ``boolean`` exactly, and text
case- and whitespace-folded.  Without a schema node (a field the schema does not know) the
values' own Python types decide.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from pipeline.consensus.normalize import normalize_amount, normalize_currency, normalize_date
from pipeline.consensus.tolerance import SAME_AMOUNT
from pipeline.schema.paths import Node, bare, child, types_of
from pipeline.text import fold

__all__ = ["Node", "child", "fold"]  # re-exported: the comparator's callers walk nodes and fold text with them


def field_kind(node: Node, root: dict[str, Any] | None = None) -> str:
    """'date', 'number', 'currency', 'boolean', 'text', 'object', 'array' or 'unknown' for a schema node."""
    node = bare(node, root)
    if node is None:
        return "unknown"
    types = types_of(node)
    if node.get("format") in ("date", "date-time"):
        return "date"
    if node.get("x-normalize") == "currency":
        return "currency"
    for kind in ("object", "array", "boolean"):
        if kind in types:
            return kind
    if "number" in types or "integer" in types:
        return "number"
    if "string" in types or "enum" in node:
        return "text"
    return "unknown"


def same(a: Any, b: Any, node: Node = None, root: dict[str, Any] | None = None) -> bool:
    """Equal as values of the field described by ``node`` (see the module docstring)."""
    if a is None or b is None:
        return a is None and b is None
    kind = field_kind(node, root)
    if kind == "unknown":
        kind = _kind_of_values(a, b)
    if kind == "date":
        return normalize_date(a) is not None and normalize_date(a) == normalize_date(b)
    if kind == "number":
        x, y = normalize_amount(a), normalize_amount(b)
        return x is not None and y is not None and abs(x - y) <= SAME_AMOUNT
    if kind == "currency":
        code_a, code_b = normalize_currency(str(a)), normalize_currency(str(b))
        return code_a == code_b if code_a is not None and code_b is not None else fold(a) == fold(b)
    if kind == "boolean":
        return bool(a) == bool(b)
    if kind in ("object", "array"):
        return a == b
    return fold(a) == fold(b)


NEAR_WORDS = 4  # text of this many words or more can agree without being equal
NEAR_SHARE = 0.8  # the share of their words (of both together) two such texts must share


def agrees(a: Any, b: Any, node: Node = None, root: dict[str, Any] | None = None) -> bool:
    """Whether two samples read the same value: ``same``, or, for text of several words, most of
    the words shared, or one's words the start of the other's.  Samples write one address with
    and without its country, with and without commas, a row's description with or without its
    second line ("Kfz-Haftpflicht" / "Kfz- Haftpflicht SF25"); that is one reading, not a
    dispute.  Only for consensus: a reviewer's added word is a correction (``review.submit``
    compares with ``same``)."""
    if same(a, b, node, root):
        return True
    if a is None or b is None or field_kind(node, root) not in ("text", "unknown") or \
            not isinstance(a, str) or not isinstance(b, str):
        return False
    words_a, words_b = re.findall(r"\w+", fold(a)), re.findall(r"\w+", fold(b))
    short, long = sorted((words_a, words_b), key=len)
    if short and len(long) >= 2 and long[:len(short)] == short:
        return True  # one sample read further along the same text: "Fahrtkosten" / "Fahrtkosten, Taxi Berlin"
    x, y = set(words_a), set(words_b)
    return min(len(x), len(y)) >= NEAR_WORDS and len(x & y) >= NEAR_SHARE * len(x | y)


def _kind_of_values(a: Any, b: Any) -> str:
    if isinstance(a, date) or isinstance(b, date):
        return "date"
    if isinstance(a, bool) or isinstance(b, bool):
        return "boolean"
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        return "number"
    return "text"


def row_distance(a: Any, b: Any, node: Node, root: dict[str, Any] | None) -> int:
    """Fields on which two rows of an array of objects differ (for pairing rows up)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return sum(0 if same(a.get(k), b.get(k), child(node, k, root), root) else 1 for k in set(a) | set(b))
    return 0 if same(a, b, node, root) else 1


@dataclass(frozen=True)
class Difference:
    """One field where what a page shows disagrees with what an authority (an e-invoice's XML) states."""

    path: str
    found: Any
    stated: Any
    node: Node = None

    def __str__(self) -> str:
        return f"{self.path}: page={self.found!r}, xml={self.stated!r}"


def differences(found: Any, stated: Any, node: Node, root: dict[str, Any] | None,
                path: str = "") -> list[Difference]:
    """Where ``found`` disagrees with ``stated``, field by field (compared as the schema types them;
    rows paired by the best assignment); a field ``stated`` leaves null is not compared."""
    if stated is None:
        return []
    if isinstance(stated, dict):
        page = found if isinstance(found, dict) else {}
        return [d for key, value in stated.items()
                for d in differences(page.get(key), value, child(node, key, root), root,
                                     f"{path}.{key}" if path else key)]
    if isinstance(stated, list):
        return _row_differences(found if isinstance(found, list) else [], stated, child(node, None, root), root, path)
    return [] if same(found, stated, node, root) else [Difference(path, found, stated, node)]


def pair_rows(left: list[Any], right: list[Any], distance: Callable[[Any, Any], float]) -> list[tuple[int, int]]:
    """The pairing of two lists of rows with the least total distance (Hungarian method): the one
    way rows are matched, between samples (``vote``), against an XML (here) and against truth (``eval``)."""
    if not left or not right:
        return []
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment([[distance(a, b) for b in right] for a in left])
    return [(int(i), int(j)) for i, j in zip(rows.tolist(), cols.tolist(), strict=True)]


def _row_differences(found: list[Any], stated: list[Any], items: Node, root: dict[str, Any] | None,
                     path: str) -> list[Difference]:
    if not stated:
        return []
    out = [] if len(found) == len(stated) else [Difference(f"{path}.length", len(found), len(stated))]
    pairs = {j: i for i, j in pair_rows(found, stated, lambda f, s: row_distance(f, s, items, root))}
    for j, row in enumerate(stated):
        if j in pairs:
            out.extend(differences(found[pairs[j]], row, items, root, f"{path}[{j}]"))
    return out
