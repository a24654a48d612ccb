"""A party's name read from the block its label heads, where the model's is no name.

A small model that reads "Käufer: / Nummer : GE2020211 / Kunden AG Mitte" takes the customer
number for the buyer's name; one that meets "Referenz des Käufers : Liselotte Müller" first takes
the reference person.  ``rules.parties`` says such a name is no name (a label, an identifier, an
address, a reference); the page says what the name is: the first line of the block under the
party's label (or after it on its line) that is a name, skipping "label : value" lines (numbers,
GLNs) and other lines that are no name.  The name is taken only where the page's labels of that
party head one block, or blocks that agree; the field stays in doubt (the reason says what was
taken), so the document is still reviewed, with the page's name in place of a number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pipeline.ground.index import PageIndex
from pipeline.render.textlayer import Word, text_run
from pipeline.text import label_runs

BLOCK = 120.0  # points: how far under its label or its name a party's block (address, numbers, ids) goes
NEAR = 60.0  # points: a block's lines start this close to its label's column (and its label's words this close)


def block_name(page: PageIndex, labels: Sequence[str], no_name: Callable[[str], str | None]) -> tuple[str, str] | None:
    """(the name, its label as printed) of the block ``labels`` head on ``page``: the first text
    after the label on its line, or else of the lines under it in its column, that ``no_name`` does
    not reject and that is no "label : value" line; None where no label heads a block, or the
    blocks name different parties."""
    found: dict[str, str] = {}
    lines = page.lines
    for k, line in enumerate(lines):
        for start, end in label_runs([w[4] for w in line], labels):
            if start and line[start][0] - line[start - 1][2] < NEAR / 2:
                continue  # inside a longer text ("Referenz des Käufers")
            head = line[start:end]
            if name := _name_in_block(head, line[end:], lines[k + 1:], no_name):
                found.setdefault(name, " ".join(w[4] for w in head))
    return next(iter(found.items())) if len(found) == 1 else None


def _name_in_block(head: Sequence[Word], after: Sequence[Word], below: Sequence[Sequence[Word]],
                   no_name: Callable[[str], str | None]) -> str | None:
    rest = text_run([w for w in after if w[4].strip(":")])
    if rest and rest[0][0] - head[-1][2] <= NEAR / 2:
        return _text(rest) if _is_name(_text(rest), no_name) else None
    x0, bottom = head[0][0], head[-1][3]
    for line in below:
        if line[0][1] - bottom > BLOCK:
            break
        column = [w for w in line if x0 - 2 <= w[0]]
        if not column or column[0][0] - x0 > NEAR:
            continue
        if any(":" in w[4] for w in text_run(column, NEAR)):
            continue  # "Nummer       : GE2020211": a label and its value, however far apart
        if _is_name(text := _text(text_run(column)), no_name):
            return text
    return None


def _is_name(text: str, no_name: Callable[[str], str | None]) -> bool:
    return any(ch.isalpha() for ch in text) and no_name(text) is None


def _text(words: Sequence[Word]) -> str:
    return " ".join(w[4] for w in words).strip(" :")
