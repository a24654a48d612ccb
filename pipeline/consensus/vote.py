"""Field-by-field consensus of several samples of the same page.

Each page can be extracted K times (greedy first, then sampled); where the samples agree the
value is probably right, where they disagree the field is *disputed* and the page is a
candidate for adjudication.  Values are compared by the field's schema type
(``pipeline.consensus.compare``: dates as dates, amounts within 0.01, text folded, text of several
words agreeing where it shares most of its words: ``agrees``); rows of
arrays of objects (line items) are aligned to the first sample's rows by the best assignment
before voting.  Ties go to the earliest sample (the greedy
one).  The result records, per field path, the winning value and its agreement share.

``anchored`` is the other reading of the same samples: every value is one sample's (the anchor's),
each with the share of samples that agree with it.  The rules use it where the field-by-field vote
mixed samples into totals that no sample wrote (``rules.cohere``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pipeline.consensus.compare import Node, agrees, child, pair_rows, row_distance


@dataclass
class Consensus:
    record: dict[str, Any]
    confidence: dict[str, float] = field(default_factory=dict)  # field path -> agreement share
    alternatives: dict[str, list[Any]] = field(default_factory=dict)  # disputed path -> the values that lost

    @property
    def disputed(self) -> list[str]:
        return sorted(p for p, c in self.confidence.items() if c < 1.0)

    @property
    def min_confidence(self) -> float:
        return min(self.confidence.values(), default=1.0)

    @property
    def mean_confidence(self) -> float:
        return sum(self.confidence.values()) / len(self.confidence) if self.confidence else 1.0


def vote(values: list[Any], node: Node = None, root: dict[str, Any] | None = None) -> tuple[Any, float]:
    """Majority value (ties: earliest) and its share of the votes, values compared as ``node`` says."""
    groups = _groups(values, node, root)
    best = max(groups, key=lambda g: g[1])  # max keeps the first of equal counts
    return best[0], best[1] / len(values)


def _groups(values: list[Any], node: Node, root: dict[str, Any] | None) -> list[tuple[Any, int]]:
    """The distinct values (as ``node`` compares them), each with its votes, in order of first vote."""
    groups: list[tuple[Any, int]] = []
    for value in values:
        for i, (representative, count) in enumerate(groups):
            if agrees(value, representative, node, root):
                groups[i] = (representative, count + 1)
                break
        else:
            groups.append((value, 1))
    return groups


def _align(rows_by_sample: list[list[Any]], node: Node, root: dict[str, Any] | None) -> list[list[Any]]:
    """Columns of aligned rows: row i of the first sample with its best match in each other sample."""
    anchor = rows_by_sample[0]
    columns: list[list[Any]] = [[row] for row in anchor]
    for rows in rows_by_sample[1:]:
        matched: list[Any] = [None] * len(anchor)
        for i, j in pair_rows(anchor, rows, lambda a, b: row_distance(a, b, node, root)):
            matched[i] = rows[j]
        for i, row in enumerate(matched):
            columns[i].append(row)
    return columns


def _anchor_vote(values: list[Any], node: Node, root: dict[str, Any] | None) -> tuple[Any, float]:
    """The first value and the share of the values that agree with it."""
    first = values[0]
    agree = sum(1 for v in values if agrees(v, first, node, root))
    return first, agree / len(values)


def _merge(values: list[Any], path: str, confidence: dict[str, float], node: Node,
           root: dict[str, Any] | None, alternatives: dict[str, list[Any]], anchor: bool = False) -> Any:
    present = [v for v in values if v is not None]
    pick = _anchor_vote if anchor else vote
    if anchor and values[0] is None and present:  # the anchor read nothing here: that is its value
        confidence[path] = (len(values) - len(present)) / len(values)
        alternatives[path] = [v for v, _ in _groups(present, node, root)]
        return None
    if present and all(isinstance(v, dict) for v in present):
        keys = list(dict.fromkeys(k for v in present for k in v))
        return {k: _merge([v.get(k) if isinstance(v, dict) else None for v in values], f"{path}.{k}", confidence,
                          child(node, k, root), root, alternatives, anchor)
                for k in keys}
    if present and all(isinstance(v, list) for v in present):
        items = child(node, None, root)
        lists = [v if isinstance(v, list) else [] for v in values]
        length, share = pick([len(v) for v in lists], {"type": "integer"}, None)
        confidence[f"{path}.length"] = share
        if all(isinstance(r, dict) for v in lists for r in v):
            columns = _align(lists, items, root)
        else:
            columns = [[v[i] if i < len(v) else None for v in lists] for i in range(max(map(len, lists)))]
        merged = [_merge(column, f"{path}[{i}]", confidence, items, root, alternatives, anchor)
                  for i, column in enumerate(columns)]
        return merged[:length] if len(lists[0]) >= length else merged
    winner, share = pick(values, node, root)
    confidence[path] = share
    if share < 1.0:  # what the other samples read: a reviewer's likely candidates
        alternatives[path] = [value for value, _ in _groups(values, node, root) if value is not winner]
    return winner


def consensus(samples: list[dict[str, Any]], schema: dict[str, Any] | None = None) -> Consensus:
    """Vote every field of the samples (normalised records of one page; the first is the greedy one),
    comparing each field as its node in ``schema`` says."""
    if not samples:
        raise ValueError("consensus needs at least one sample")
    confidence: dict[str, float] = {}
    alternatives: dict[str, list[Any]] = {}
    record = _merge(list(samples), "$", confidence, schema, schema, alternatives)
    return _result(record, confidence, alternatives)


def anchored(samples: list[dict[str, Any]], anchor: int, schema: dict[str, Any] | None = None) -> Consensus:
    """Sample ``anchor``'s record as it is, each field with the share of the samples that agree with
    it and what the others read (rows of the others aligned to the anchor's)."""
    ordered = [samples[anchor], *samples[:anchor], *samples[anchor + 1:]]
    confidence: dict[str, float] = {}
    alternatives: dict[str, list[Any]] = {}
    record = _merge(ordered, "$", confidence, schema, schema, alternatives, anchor=True)
    return _result(record, confidence, alternatives)


def alternatives_text(alternatives: dict[str, list[Any]]) -> dict[str, list[str]]:
    """The losing values as a reviewer reads them: text as it is, anything else as JSON."""
    return {path: [v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values]
            for path, values in alternatives.items()}


def _result(record: Any, confidence: dict[str, float], alternatives: dict[str, list[Any]]) -> Consensus:
    return Consensus(record=record, confidence={k.removeprefix("$."): v for k, v in confidence.items()},
                     alternatives={k.removeprefix("$."): v for k, v in alternatives.items()})
