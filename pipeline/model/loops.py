"""Stop an answer that repeats rows more often than the page prints them.

A small model on a table of similar rows sometimes falls into a loop: it writes the same row
again and again until ``--max-tokens`` (2,048 tokens, four minutes of one core here), and every
further sample of the page tends to do the same.  What the page prints bounds what a record can
hold: a row written ``n`` times needs each of its values printed at least ``n`` times (values are
copied from the page).  So once the answer holds a row more often than the page prints the
rarest of its values that the page prints at all, the rest is the loop: the answer is stopped
there, minutes sooner.  The answer then goes on from the rows the page bounds: the list is closed
before the first row past the page's count and the model writes the fields after it (``rows_closed``;
the totals a cut would lose).  The page is marked ``truncated`` and so flagged either way: a model that
looped over a table may have written the wrong rows.  Where it cannot go on, the answer is handled
like one cut at ``--max-tokens`` (kept up to the cut, repeated rows removed).  Five rows that read alike on a
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
    return bool(_past_page(answer, page))


def rows_closed(answer: str, page: str) -> str | None:
    """``answer`` up to the first row written more often than ``page`` prints it, with that list of
    rows closed there: what the model goes on from, so that the fields after the rows (the totals)
    are read rather than lost with the loop.  None where no row outruns the page or the row does not
    follow another in a list."""
    bounds = _past_page(answer, page)
    seen: Counter[str] = Counter()
    for match in _FLAT_OBJECT.finditer(answer):
        row = match.group()
        seen[row] += 1
        if row in bounds and seen[row] > bounds[row]:
            head = answer[:match.start()].rstrip()
            return head[:-1].rstrip() + "]" if head.endswith(",") else None
    return None


def _past_page(answer: str, page: str) -> dict[str, int]:
    """The rows ``answer`` writes more often than ``page`` prints them, with how often it prints them."""
    counts = Counter(m.group() for m in _FLAT_OBJECT.finditer(answer))
    out = {}
    for text, n in counts.items():
        if n < MIN_REPEATS:
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError:
            continue
        printed = [found for value in _values(row) if (found := page.count(value))]
        if printed and n > min(printed):
            out[text] = min(printed)
    return out


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
