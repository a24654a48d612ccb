"""A row's text printed under another column's heading than its own.

A table heads its columns: "Pos | Art-Nr-Kunde | Beschreibung | Nettopreis | Menge | Entgelt".  A
small model reading a row from the left takes the first text it meets as the row's description: the
customer's article number ("Toolbox") where the row prints its description ("Stahlcoil") one column
on.  Both are printed on the row's line, so grounding finds the value, and every sample may repeat
it.  The page says which column is the text's where the schema names its headings: ``x-labels`` on a
row's field lists how tables head its column ("beschreibung", "description", ...), in the languages
its documents come in.  A row's text none of whose words that column prints on the line, printed
under another column's heading there, while the heading's own column prints other text on that
line, is in doubt, with that text as the reason.  Nothing is said where the table has no such
heading, or the text is printed under it anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.ground.index import PageIndex
from pipeline.render.textlayer import Word
from pipeline.schema.paths import bare, node_at, x_labels
from pipeline.text import fold, fold_words

BAND = 20.0  # points: a table's headings stand on one line, or stacked within this of it
_TEXT = re.compile(r"[^\W\d_]{3}")  # a cell that holds text: three letters in a row


@dataclass(frozen=True)
class Heading:
    page: int  # the index of the page (of those the request read) that prints it
    box: tuple[float, float, float, float]
    text: str
    band: tuple[Word, ...]  # the other columns' headings: the words printed beside it, within BAND


def column_labels(schema: dict[str, Any], items: str) -> dict[str, list[str]]:
    """The row fields of the array ``items`` with ``x-labels`` (their columns' headings), and those."""
    node = bare(node_at(schema, f"{items}[0]"), schema)
    return {name: labels for name, sub in ((node or {}).get("properties") or {}).items()
            if (labels := x_labels(sub, f"{items}[].{name}")) is not None}


def headings(pages: Sequence[PageIndex], labels: Sequence[str]) -> list[Heading]:
    """Where ``pages`` print one of ``labels`` as a word or a run of words, in page order."""
    wanted = [fold_words(label).split() for label in labels]
    found = []
    for p, page in enumerate(pages):
        for line in page.lines:
            words = [_plain(w[4]) for w in line]
            for i in range(len(line)):
                for label in wanted:
                    if words[i:i + len(label)] == label:
                        run = line[i:i + len(label)]
                        box = (run[0][0], min(w[1] for w in run), run[-1][2], max(w[3] for w in run))
                        mid = (box[1] + box[3]) / 2
                        band = tuple(w for w in page.words if w not in run and abs((w[1] + w[3]) / 2 - mid) <= BAND)
                        found.append(Heading(p, box, " ".join(w[4] for w in run), band))
    return found


def off_column(text: str, pages: Sequence[PageIndex], heads: Sequence[Heading]) -> str | None:
    """Why ``text`` is in doubt: printed, wherever its first word is, under another column's
    heading than the last of ``heads`` above it, on a line whose headed column prints other text;
    None where it is printed in that column, or the pages do not tell."""
    words = text.split()
    if not words or not heads:
        return None
    first, own = fold(words[0]), {fold(w) for w in words}
    verdicts: list[str | None] = []
    for p, page in enumerate(pages):
        for line in page.lines:
            for word in line:
                if fold(word[4]) != first:
                    continue
                mid = (word[1] + word[3]) / 2
                if any(h.page == p and h.box[1] <= mid <= h.box[3] for h in heads):
                    verdicts.append(None)  # a line of headings, not a row
                    continue
                above = [h for h in heads if h.page < p or (h.page == p and h.box[3] <= word[1])]
                verdicts.append(_verdict(word, line, above[-1], own) if above else None)
    if not verdicts or None in verdicts:
        return None
    return verdicts[0]


def _verdict(word: Word, line: Sequence[Word], head: Heading, own: set[str]) -> str | None:
    if _overlaps(word, head.box):
        return None
    beside = [w[4] for w in head.band if _overlaps(word, w)]
    inside = [w for w in line if _overlaps(w, head.box) and _TEXT.search(w[4])]
    if not beside or not inside or {fold(w[4]) for w in inside} & own:
        return None
    return (f"printed under {' '.join(beside)!r}, where the column {head.text!r} prints "
            f"{' '.join(w[4] for w in inside)!r}")


def _overlaps(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > 0


def _plain(word: str) -> str:
    return fold_words(word).strip(":.")
