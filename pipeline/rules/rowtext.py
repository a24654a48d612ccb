"""A row's text as the page prints it: a word broken at a hyphen joined, a text printed away from
the row's amount in doubt.

Tables with narrow text columns (the e-invoice stylesheets', insurers' premium tables) wrap a
compound where its hyphen is: "Kfz-" at the end of one line, "Haftpflicht" under it.  A small model
copies what it sees: "Kfz- Haftpflicht" (the line break read as a space), or only "Kfz-".  Neither
is the description: the first is no word the document uses, the second is cut (``row_doubts``
flags it).  The page proves the join: the word after the hyphen starts the next line, where the
cell's text starts (wrapped text is aligned), and the page never prints the
two words side by side.  Only a continuation that starts with a capital or a digit is joined
("Kfz-Haftpflicht", "DIN-A4"): a lower-case one may be a syllable break ("Rech- nung") or a
shortened word before "und" ("Ein- und Ausgang"), which the page alone does not tell apart.  Each
join is recorded.

A row is printed as a block: its text on the line that prints its amount, or on the line above
(text over its figures), or wrapped onto the lines below.  A small model that loses its place in a
table takes a row's text from elsewhere: a note above the table ("Rapport-Nr.: 42389 vom
08.03.2018"), a group's title, the next row's second line.  That text is printed, so grounding finds
it, and every sample may repeat it.  Where the page prints both the text's first word and the row's
amount, but never within a row's block of each other, the text is in doubt (``apart_from_amount``);
where either is printed nowhere, grounding already says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipeline.ground.index import PageIndex
from pipeline.render.textlayer import Word
from pipeline.text import fold

ABOVE, BELOW = 1, 4  # lines: a row's text starts at most this far above / below a line printing its amount
EDGE = 2.0  # points: a wrapped line starts where its cell's text starts, give or take this
CUT = re.compile(r"\w-$")  # a word that ends at its hyphen: the rest is on the next line
_BROKEN = re.compile(r"(\w-) (?=[A-ZÀ-Þ\d])|(\w-)$")


def join_broken_words(record: dict[str, Any], rules: list[dict[str, Any]],
                      pages: Sequence[PageIndex]) -> tuple[dict[str, Any], list[str]]:
    """``record`` with its rows' texts joined where the page broke a hyphenated word, and notes."""
    breaks = _line_breaks(pages)
    notes: list[str] = []
    if not breaks:
        return record, notes
    for rule in rules:
        rows = record.get(rule["items"]) if rule.get("kind") == "product" else None
        if not isinstance(rows, list):
            continue
        fixed = list(rows)
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                continue
            for key, text in row.items():
                if isinstance(text, str) and (joined := _join(text, breaks)) != text:
                    fixed[i] = {**fixed[i], key: joined}
                    notes.append(f"{rule['items']}[{i}].{key}: {text!r} -> {joined!r} (a word the page broke "
                                 "at its hyphen)")
        record = {**record, rule["items"]: fixed}
    return record, notes


def _join(text: str, breaks: dict[str, set[str]]) -> str:
    """``text`` with "A- B" as "A-B" and a final "A-" completed, where the page broke "A-" before "B"."""
    def replace(match: re.Match[str]) -> str:
        head = match.group(1) or match.group(2)
        word = _last_word(text[:match.start()] + head)
        after = text[match.end():].split(" ", 1)[0] if match.group(1) else None
        nexts = breaks.get(fold(word), set())
        if after is not None:
            return head if fold(after) in {fold(n) for n in nexts} else match.group()
        return head + next(iter(nexts)) if len(nexts) == 1 else match.group()
    return _BROKEN.sub(replace, text)


def _last_word(text: str) -> str:
    return text.rsplit(" ", 1)[-1]


def _line_breaks(pages: Sequence[PageIndex]) -> dict[str, set[str]]:
    """Each hyphenated word that ends a line's run of text, with the capitalised words that start
    the next line where the cell's text starts (wrapped text is aligned), less any pair the page also
    prints side by side."""
    found: dict[str, set[str]] = {}
    beside: set[tuple[str, str]] = set()
    for page in pages:
        lines = page.lines
        for k, line in enumerate(lines):
            beside |= {(fold(a[4]), fold(b[4])) for a, b in zip(line, line[1:], strict=False)}
            if k + 1 == len(lines):
                continue
            for j, word in enumerate(line):
                if not CUT.search(word[4]) or (j + 1 < len(line) and _adjacent(word, line[j + 1])):
                    continue
                start = j
                while start and _adjacent(line[start - 1], line[start]):
                    start -= 1
                below = [w for w in lines[k + 1] if abs(w[0] - line[start][0]) <= EDGE]
                if below and re.match(r"[A-ZÀ-Þ\d]", below[0][4]):
                    found.setdefault(fold(word[4]), set()).add(below[0][4])
    kept = {word: {n for n in nexts if (word, fold(n)) not in beside} for word, nexts in found.items()}
    return {word: nexts for word, nexts in kept.items() if nexts}


def _adjacent(a: Word, b: Word) -> bool:
    """``b`` follows ``a`` as the next word of the same text (not the next column)."""
    return b[0] - a[2] < 2.5 * (a[3] - a[1])


def apart_from_amount(text: str, amount: float | None, pages: Sequence[PageIndex]) -> bool:
    """The page prints ``text``'s first word and ``amount``, but nowhere within a row's block of each
    other (``ABOVE`` / ``BELOW``)."""
    words = text.split()
    if not words or amount is None:
        return False
    first = fold(words[0])
    text_seen = amount_seen = False
    for page in pages:
        text_lines = page.word_lines.get(first, set())
        amount_lines = {s.line for value, s in page.amounts if abs(value - abs(amount)) < 0.005}
        text_seen, amount_seen = text_seen or bool(text_lines), amount_seen or bool(amount_lines)
        if any(-ABOVE <= t - a <= BELOW for t in text_lines for a in amount_lines):
            return False
    return text_seen and amount_seen
