"""What the page's labels say: who is seller and who buyer (``rules.parties``), and which value is a
field's where the schema names its labels: the one the page prints after a label (or under it, in
a table); the field is in doubt when the record holds another.

A small model reads "Handelsrechnung (380) Nr. 471102" as invoice number 380, the document type
code beside the title: that value is printed, so grounding finds it, and every sample agrees, so
nothing flagged it.  The page says which number is the invoice's: the one after "Rechnung ... Nr.".
``"x-labels": ["invoice no", "rechnung nr", "rechnungsnummer", ...]`` on a field lists how pages
label it, in the languages its documents come in (the schema's, so a user adds theirs).  A label's
first word also matches the end of a compound ("Handelsrechnung" for "rechnung"), and an aside in
parentheses between its words is skipped.  Where the labels point at one value, the record takes it
(recorded in ``repairs``); where at several (a credit note labels its own number and the
invoice's it corrects) and the record holds none of them, the field is in doubt with the labelled
values as the reason.  Nothing is said where no label is printed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipeline.consensus.compare import field_kind
from pipeline.consensus.normalize import normalize_date
from pipeline.ground.index import MAX_DATE_SPAN, PageIndex
from pipeline.rules.evidence import Doubt
from pipeline.rules.parties import repair_parties
from pipeline.rules.vatids import misplaced_ids, repair_seller_vat_id, uncross_vat_ids
from pipeline.schema.paths import x_labels
from pipeline.text import alnum, fold_words

COMPOUND = 6  # a label word this long also ends a compound word ("handelsrechnung")
BELOW = 40.0  # points: a value this far under its label's first word, in its column, is the one it labels
_ASIDE = re.compile(r"^\(.*\)$")


def read_labels(record: dict[str, Any], schema: dict[str, Any], pages: Sequence[PageIndex],
                page_number: int) -> tuple[dict[str, Any], list[str], list[Doubt]]:
    """What the pages' labels say: seller and buyer the right way round by the first page's
    (``rules.parties``), the seller's VAT id where it holds another number and the parties' ids
    where each is printed in the other's block (``rules.vatids``), then the fields whose value
    another labelled value contradicts; the record, what changed, the doubts."""
    notes: list[str] = []
    doubts: list[Doubt] = []
    if page_number == 1 and pages and pages[0].words:  # the parties are on page 1
        record, swapped, doubts = repair_parties(record, schema, pages[0])
        notes += [swapped] if swapped else []
        record, taken = repair_seller_vat_id(record, schema, pages)
        notes += taken
        record, taken = uncross_vat_ids(record, schema, pages[0])
        notes += taken
        doubts += misplaced_ids(record, schema)
    record, taken, unsure = repair_labelled(record, schema, pages)
    return record, notes + taken, doubts + unsure


def repair_labelled(record: dict[str, Any], schema: dict[str, Any],
                    pages: Sequence[PageIndex]) -> tuple[dict[str, Any], list[str], list[Doubt]]:
    """Each field with ``x-labels`` whose value is not one the pages print after a label of theirs:
    the labelled value where the labels point at one (recorded), in doubt where at several."""
    notes: list[str] = []
    doubts: list[Doubt] = []
    for path, labels in labelled_fields(schema).items():
        value = record.get(path)
        dated = field_kind(schema["properties"][path], schema) == "date"
        found: dict[str, str] = {}
        for page in pages:
            for words in labelled(page, labels):
                # "03.10.2018" is the date 2018-10-03, read in the page's own order; "9 giu 2026" is
                # three words (the longest run after the label that is a date)
                text = _date_after(words, page.date_order is not False) if dated else words[0]
                if alnum(text):
                    found.setdefault(alnum(text), text)
        if not found or isinstance(value, str) and alnum(value) in found:
            continue
        if len(found) == 1:
            (only,) = found.values()
            record = {**record, path: only}
            notes.append(f"{path}: {value!r} -> {only!r} (the value the page labels so)")
        else:
            doubts.append((path, f"the page labels {', '.join(sorted(found.values())[:3])} as this field, "
                                 f"not {value!r}"))
    return record, notes, doubts


def labelled_fields(schema: dict[str, Any]) -> dict[str, list[str]]:
    """The top-level fields with ``x-labels``, and their labels; not the parties, whose labels head
    their blocks (``rules.parties``)."""
    return {name: labels for name, node in (schema.get("properties") or {}).items()
            if (labels := x_labels(node, name)) is not None and "x-party" not in node}


def _date_after(words: list[str], dayfirst: bool) -> str:
    """The date the words after a label start with, as 'YYYY-MM-DD', or ''."""
    for n in range(min(len(words), MAX_DATE_SPAN), 0, -1):
        if found := normalize_date(" ".join(words[:n]).strip(":;,.()|"), dayfirst):
            return found
    return ""


def labelled(page: PageIndex, labels: Sequence[str]) -> list[list[str]]:
    """The values ``page`` prints right after one of ``labels`` on its line (the first word and up to
    ``MAX_DATE_SPAN`` - 1 after it, for a date in words), or under it."""
    lines = page.lines
    folded = [[fold_words(w[4]).strip(":.") for w in line] for line in lines]
    found = []
    for label in labels:
        parts = [p for p in (w.strip(":.") for w in fold_words(label).split()) if p]
        for n, words in enumerate(folded):
            for i in range(len(words)):
                end = _match(words, i, parts)
                if end is None:
                    continue
                after = [w for w in lines[n][end:] if not _ASIDE.match(w[4])]
                while after and not fold_words(after[0][4]).strip(":.#"):  # a lone ":" or "#"
                    after = after[1:]
                if after and _value_like(after[0][4]):
                    found.append([after[0][4].strip(":,;")] + [w[4] for w in after[1:MAX_DATE_SPAN]])
                elif (under := _under(lines, n, lines[n][i])) is not None:  # a column's header (the next
                    found.append([under])  # column's header beside it, "Fälligkeit  Teilzahlung", or nothing)
    return found


def _match(words: list[str], i: int, parts: list[str]) -> int | None:
    """Where the label ``parts`` ends if it starts at ``words[i]``, skipping asides in parentheses."""
    first = parts[0]
    if not (words[i] == first or len(first) >= COMPOUND and words[i].endswith(first)):
        return None
    j = i + 1
    for part in parts[1:]:
        while j < len(words) and _ASIDE.match(words[j]):
            j += 1
        if j >= len(words) or words[j] != part:
            return None
        j += 1
    return j


def _value_like(text: str) -> bool:
    """An identifier holds a digit ("471102", "INV-2025-17"); a word after a label is not one."""
    return any(ch.isdigit() for ch in text)


def _under(lines: list[list[Any]], n: int, label: Any) -> str | None:
    """The word just under the label, in its column: a table's header and its first row."""
    if n + 1 >= len(lines):
        return None
    for word in lines[n + 1]:
        if 0 < word[1] - label[1] <= BELOW and word[0] < label[2] and word[2] > label[0] and _value_like(word[4]):
            return str(word[4]).strip(":,;")
    return None
