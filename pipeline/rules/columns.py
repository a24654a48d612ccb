"""A row's text printed under another column's heading than its own, taken from its own column.

A table heads its columns: "Pos | Art-Nr-Kunde | Beschreibung | Nettopreis | Menge | Entgelt".  A
small model reading a row from the left takes the first text it meets as the row's description: the
customer's article number ("Toolbox") where the row prints its description ("Stahlcoil") one column
on.  Both are printed on the row's line, so grounding finds the value, and every sample may repeat
it.  The page says which column is the text's where the schema names its headings: ``x-labels`` on a
row's field lists how tables head its column ("beschreibung", "description", ...), in the languages
its documents come in.  A row's text none of whose words that column prints on the line, printed
under another column's heading there, while the heading's own column prints other text on that
line, is replaced by that text (recorded).  It stays in doubt where that column's text goes on to
the next line (the row's text may be longer), or where the text is printed on several lines whose
columns say different things.  Nothing is said where the table has no such heading, or the text is
printed under it anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.ground.index import PageIndex
from pipeline.render.textlayer import Word, text_run
from pipeline.schema.paths import bare, node_at, x_labels
from pipeline.text import fold, label_runs

BAND = 20.0  # points: a table's headings stand on one line, or stacked within this of it
EDGE = 2.0  # points: a column's text on the next line starts where it starts on this one, give or take this
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
    found = []
    for p, page in enumerate(pages):
        for line in page.lines:
            for start, end in label_runs([w[4] for w in line], labels):
                if not _cell(line, start, end):
                    continue
                run = line[start:end]
                box = (run[0][0], min(w[1] for w in run), run[-1][2], max(w[3] for w in run))
                mid = (box[1] + box[3]) / 2
                band = tuple(w for w in page.words if w not in run and abs((w[1] + w[3]) / 2 - mid) <= BAND)
                found.append(Heading(p, box, " ".join(w[4] for w in run), band))
    return found


@dataclass(frozen=True)
class Misplaced:
    beside: str  # the other column's heading the text is printed under
    heading: str  # the heading of the text's own column
    text: str  # what that column prints on the text's line
    continues: bool  # and on the line under it: the text may go on there

    def why(self, text: str) -> str:
        return f"{text!r} is printed under {self.beside!r}, where the column {self.heading!r} prints {self.text!r}"


def repair_columns(record: dict[str, Any], rules: list[dict[str, Any]], pages: Sequence[PageIndex],
                   schema: dict[str, Any]) -> tuple[dict[str, Any], list[str], list[tuple[str, str]]]:
    """``record`` with each row's text that is printed under another column's heading replaced by
    what its own column prints on that line (recorded), and the doubts: such a text where its
    column's text goes on to the next line (the replacement may be cut), or where the pages print
    it on several lines whose columns disagree."""
    notes: list[str] = []
    doubts: list[tuple[str, str]] = []
    for rule in rules:
        rows = record.get(rule["items"]) if rule.get("kind") == "product" else None
        if not isinstance(rows, list) or not pages:
            continue
        heads = {key: found for key, words in column_labels(schema, rule["items"]).items()
                 if (found := headings(pages, words))}
        fixed = list(rows)
        for i, row in enumerate(rows):
            for key in heads:
                text = row.get(key) if isinstance(row, dict) else None
                places = misplaced(text, pages, heads[key]) if isinstance(text, str) else []
                path = f"{rule['items']}[{i}].{key}"
                if len({m.text for m in places}) > 1:
                    doubts.append((path, places[0].why(str(text))))
                elif places:
                    fixed[i] = {**fixed[i], key: places[0].text}
                    notes.append(f"{path}: {text!r} -> {places[0].text!r} ({places[0].why(str(text))})")
                    if places[0].continues:
                        doubts.append((path, f"{places[0].text!r} is the first line of the column "
                                             f"{places[0].heading!r}; it goes on below"))
        record = {**record, rule["items"]: fixed}
    return record, notes, doubts


def misplaced(text: str, pages: Sequence[PageIndex], heads: Sequence[Heading]) -> list[Misplaced]:
    """Where ``text`` is printed, wherever its first word is, under another column's heading than the
    last of ``heads`` above it, on a line whose headed column prints other text: one per place;
    none where it is printed in that column anywhere, or the pages do not tell."""
    words = text.split()
    if not words or not heads:
        return []
    first, own = fold(words[0]), {fold(w) for w in words}
    found: list[Misplaced | None] = []
    for p, page in enumerate(pages):
        lines = page.lines
        for k in sorted(page.word_lines.get(first, ())):  # the lines that print it (the page's index)
            line = lines[k]
            for word in line:
                if fold(word[4]) != first:
                    continue
                mid = (word[1] + word[3]) / 2
                if any(h.page == p and h.box[1] <= mid <= h.box[3] for h in heads):
                    found.append(None)  # a line of headings, not a row
                    continue
                above = [h for h in heads if h.page < p or (h.page == p and h.box[3] <= word[1])]
                below = lines[k + 1] if k + 1 < len(lines) else []
                found.append(_verdict(word, line, below, above[-1], own) if above else None)
    return [] if not found or None in found else [m for m in found if m]


def _verdict(word: Word, line: Sequence[Word], below: Sequence[Word], head: Heading,
             own: set[str]) -> Misplaced | None:
    if _overlaps(word, head.box):
        return None
    beside = [w[4] for w in head.band if _overlaps(word, w)]
    run = _run(line, head)
    if not beside or not run or {fold(w[4]) for w in run} & own:
        return None
    height = run[0][3] - run[0][1]
    under = [w for w in below if abs(w[0] - run[0][0]) <= EDGE and _TEXT.search(w[4])
             and w[1] - run[0][3] <= height]
    return Misplaced(" ".join(beside), head.text, " ".join(w[4] for w in run), bool(under))


def _run(line: Sequence[Word], head: Heading) -> list[Word]:
    """The text the heading's column prints on ``line``: from its first word with letters under the
    heading, with the words that follow it as one text (not the next column's)."""
    start = next((i for i, w in enumerate(line) if _overlaps(w, head.box) and _TEXT.search(w[4])), None)
    if start is None:
        return []
    return text_run(line[start:])


def _cell(line: Sequence[Word], start: int, end: int) -> bool:
    """The words ``start:end`` of ``line`` stand as a cell of their own: no word of the line comes
    within a line's height of them ("Description of services" is a sentence, not a heading)."""
    height = line[start][3] - line[start][1]
    return (start == 0 or line[start][0] - line[start - 1][2] >= height) and \
        (end == len(line) or line[end][0] - line[end - 1][2] >= height)


def _overlaps(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > 0
