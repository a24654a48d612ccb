"""Stop an answer that repeats rows more often than the page prints them.

A small model on a table of similar rows sometimes falls into a loop: it writes the same row
again and again until ``--max-tokens`` (2,048 tokens, four minutes of one core here), and every
further sample of the page tends to do the same.  What the page prints bounds what a record can
hold: a row written ``n`` times needs each of its values printed at least ``n`` times (values are
copied from the page).  So once the answer holds a row more often than the page prints the
rarest of its values that the page prints at all, the rest is the loop: the answer is stopped
there and handled like one cut at ``--max-tokens`` (kept up to the cut, repeated rows removed,
the page marked ``truncated`` and so flagged), minutes sooner.  Five rows that read alike on a
page that prints five such rows are not stopped.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

_FLAT_OBJECT = re.compile(r"\{[^{}\[\]]*\}")  # a complete object without nested objects or arrays: a row
MIN_VALUE = 3  # shorter values ("1", "EU") are printed everywhere: no bound
CHECK_EVERY = 16  # answer tokens between checks
MIN_REPEATS = 3  # a row written twice is never stopped


def loops_past_page(answer: str, page: str) -> bool:
    """Whether ``answer`` holds some row more often than ``page`` prints that row's values."""
    counts = Counter(m.group() for m in _FLAT_OBJECT.finditer(answer))
    for text, n in counts.items():
        if n < MIN_REPEATS:
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError:
            continue
        printed = [found for value in _values(row) if (found := page.count(value))]
        if printed and n > min(printed):
            return True
    return False


def _values(row: Any) -> list[str]:
    values = row.values() if isinstance(row, dict) else []
    return [str(v) for v in values if v is not None and not isinstance(v, bool) and len(str(v)) >= MIN_VALUE]


class LoopGuard:
    """Watches one answer as it is decoded (``due`` is cheap; ``loops`` detokenizes)."""

    def __init__(self, page: str) -> None:
        self.page = page
        self.stopped = False

    def due(self, tokens: int) -> bool:
        return tokens >= CHECK_EVERY and tokens % CHECK_EVERY == 0

    def loops(self, answer: str) -> bool:
        self.stopped = self.stopped or loops_past_page(answer, self.page)
        return self.stopped
