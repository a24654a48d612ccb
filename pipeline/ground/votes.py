"""The samples' agreement counted among the readings the page backs.

Three samples of a small model disagree in two ways: they read different words of the page (a
real doubt: which of two printed dates is the due date), or one of them writes a value printed
nowhere (the VAT id of another company, a plausible date).  The second kind is no reading of the
page: it is the model's invention, and ``ground`` would flag it in the record anyway.  So for a
field the record holds as printed, a sample's value that is printed nowhere on the pages read is
not counted as a vote against it; for a field the record leaves empty (or whose invented value
``ground.drop_unprinted`` dropped), such a sample agrees: neither found the value printed.  This
only ever settles a dispute, never starts one: a value a repair emptied (an allowance the rows
do not need) keeps the agreement it was voted with, and its rule speaks for it.  Rows are left
as voted: their paths are aligned rows, not the samples' own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.consensus.compare import agrees
from pipeline.ground.index import PageIndex
from pipeline.ground.sources import groundable, locate
from pipeline.schema.paths import at_path, node_at


def printed_agreement(confidence: dict[str, float], record: dict[str, Any] | None,
                      samples: Sequence[dict[str, Any]], schema: dict[str, Any],
                      pages: Sequence[PageIndex]) -> dict[str, float]:
    """``confidence`` with the disputes of fields outside rows re-counted among printed readings."""
    if record is None or not samples or not any(p.words for p in pages):
        return confidence
    out = dict(confidence)
    for path, share in confidence.items():
        if share >= 1.0 or "[" in path or path.endswith(".length"):
            continue
        node = node_at(schema, path)
        kind = groundable(node, schema)
        final = at_path(record, path)
        if kind is None or (not _empty(final) and not _printed(final, kind, pages)):
            continue  # a vocabulary, or the record's own value is printed nowhere: the dispute stands
        votes = [at_path(sample, path) for sample in samples]
        printed = [not _empty(v) and _printed(v, kind, pages) for v in votes]
        if _empty(final):  # nothing printed: a sample that wrote a value printed nowhere agrees
            out[path] = max(share, printed.count(False) / len(votes))
            continue
        counted = [v for i, v in enumerate(votes) if printed[i] or _empty(v)]
        # none printed (the record's value came from a label or a repair): nothing to re-count
        if counted and len(counted) < len(votes):
            out[path] = max(share, sum(agrees(v, final, node, schema) for v in counted) / len(counted))
    return out


def _printed(value: Any, kind: str, pages: Sequence[PageIndex]) -> bool:
    return any(locate(value, kind, index, 0)["match"] != "none" for index in pages if index.words)


def _empty(value: Any) -> bool:
    return value is None or value == ""


