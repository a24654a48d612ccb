"""Each extracted value, looked up on its page: ``field_sources``.

Which fields are looked up comes from the schema: numbers (amounts within half a cent, the sign
ignored: "12.00-" on a credit note), dates (as dates, day- or month-first) and free text;
vocabularies (enums, ``"x-normalize": "currency"``, booleans) are chosen, not copied, and a
field marked ``"x-ground": false`` is one the model derives on purpose.  Match kinds, best
first: ``exact`` (the words as printed), ``normalised`` (same value after normalising: an
amount or a date in another format, text without its punctuation), ``fuzzy`` (text: most of its
words on the page, e.g. an address over several lines, a long word misspelt by a letter or
two) and ``none`` (nowhere on the page).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Any

from pipeline.consensus.compare import Node, field_kind
from pipeline.consensus.normalize import normalize_amount, normalize_date
from pipeline.consensus.tolerance import HALF_CENT
from pipeline.ground.index import PageIndex, union
from pipeline.results import FieldSource as FieldSource  # re-exported: the type of what grounding finds
from pipeline.schema.paths import leaves, resolve_ref, with_value
from pipeline.text import alnum, fold, tokens

MATCH_KINDS = ("exact", "normalised", "fuzzy", "none")
FUZZY_SHARE = 0.6  # of a text's words found on the page, for a fuzzy match
MIN_TELLING = 3  # characters a token needs to count as evidence of a fuzzy match


def ground_record(record: Any, schema: dict[str, Any], index: PageIndex, page: int) -> dict[str, FieldSource]:
    """``field_sources`` of one page's record (an empty dict when the page has no words to look in)."""
    if not index.words or not isinstance(record, dict):
        return {}
    return {path: locate(value, kind, index, page) for path, value, node in leaves(record, schema, schema)
            if value not in (None, "") and (kind := groundable(node, schema)) is not None}


def ground_pages(record: Any, schema: dict[str, Any], pages: Sequence[PageIndex], first: int) -> dict[str, FieldSource]:
    """``field_sources`` of a request's record, looked up in each page it read (from page ``first``
    on): the best match wins, the earlier page on a tie."""
    if record is None:
        return {}
    found = [ground_record(record, schema, index, first + i) for i, index in enumerate(pages)]
    rank = {kind: i for i, kind in enumerate(MATCH_KINDS)}
    paths = next(f for f in found if f) if any(found) else {}
    return {path: min((f[path] for f in found if path in f), key=lambda s: rank[s["match"]]) for path in paths}


def ungrounded(sources: dict[str, FieldSource]) -> list[str]:
    return sorted(path for path, source in sources.items() if source["match"] == "none")


def drop_unprinted(record: Any, schema: dict[str, Any], sources: dict[str, FieldSource],
                   kinds: Sequence[str] = ("date",)) -> tuple[Any, list[str]]:
    """``record`` with its values of ``kinds`` that are printed nowhere (``none``) set to null, and
    their paths.  A date is copied from the page, never worked out: one found in no format on any
    page read is the model's own (the month's end, the issue date plus the payment terms), so
    it is dropped and the page says so, instead of flagging a document for a value nobody printed."""
    dropped = [path for path, _, node in leaves(record, schema, schema)
               if (source := sources.get(path)) is not None and source["match"] == "none"
               and groundable(node, schema) in kinds]
    for path in dropped:
        record = with_value(record, path, None)
    return record, dropped


def groundable(node: Node, root: dict[str, Any]) -> str | None:
    """'number', 'date' or 'text' for a field whose value is copied from the page, else None."""
    if node is None:
        return None
    resolved = resolve_ref(node, root)
    if resolved.get("x-ground") is False or "enum" in resolved or "const" in resolved:
        return None
    kind = field_kind(resolved, root)
    return kind if kind in ("number", "date", "text") else None


def locate(value: Any, kind: str, index: PageIndex, page: int) -> FieldSource:
    """Where ``value`` (a field of ``kind``) is printed on the page, best match first."""
    found = {"number": _amount, "date": _date, "text": _text}[kind](value, index)
    if found is None:
        return FieldSource(page=page, bbox=None, text=None, match="none")
    text, bbox, match = found
    return FieldSource(page=page, bbox=list(bbox), text=text, match=match)


Found = tuple[str, tuple[float, float, float, float], str] | None


def _amount(value: Any, index: PageIndex) -> Found:
    number = normalize_amount(value)
    if number is None:
        return None
    hits = [span for amount, span in index.amounts if abs(amount - abs(number)) < HALF_CENT]
    if not hits:
        return None
    best = min(hits, key=lambda s: (s.words, len(s.text)))
    printed = {f"{abs(number):.2f}", f"{abs(number):g}", str(value)}
    return best.text, best.bbox, "exact" if best.text in printed else "normalised"


def _date(value: Any, index: PageIndex) -> Found:
    iso = normalize_date(value)
    if iso is None:
        return None
    hits = [span for dates, span in index.dates if iso in dates]
    if not hits:
        return None
    best = min(hits, key=lambda s: (s.words, len(s.text)))
    return best.text, best.bbox, "exact" if best.text == str(value) else "normalised"


def _text(value: Any, index: PageIndex) -> Found:
    wanted = fold(str(value))
    folded, owner = index.folded
    at = _at_word_start(folded, wanted)
    if wanted and at >= 0:
        return _words(index, owner[at], owner[at + len(wanted) - 1], "exact")
    compact = alnum(str(value))
    page_compact, compact_owner = index.compact
    at = page_compact.find(compact) if len(compact) >= 2 else -1
    if at >= 0:
        return _words(index, compact_owner[at], compact_owner[at + len(compact) - 1], "normalised")
    words = tokens(str(value))
    printed = {t: i for t in words if (i := _token_at(t, index)) is not None}  # each token looked up once
    hits = sorted(set(printed.values()))
    # a token of one or two characters ("1", "no") is on every page: alone it proves nothing ("INV-1"
    # is not printed because "INV-2025-3213" and "1,449.54" are), so two longer tokens must be found
    telling = sum(1 for t in words if len(t) >= MIN_TELLING and t in printed)
    if len(words) >= 2 and len(hits) >= FUZZY_SHARE * len(words) and telling >= 2:
        found = [index.words[i] for i in hits]
        return " ".join(w[4] for w in found), union(found), "fuzzy"
    if len(words) == 1 and len(compact) >= 6:  # one long word, misspelt by OCR or by the model
        best = max(index.words, key=lambda w: SequenceMatcher(None, compact, w[4].casefold()).ratio())
        if SequenceMatcher(None, compact, best[4].casefold()).ratio() >= 0.85:
            return best[4], union([best]), "fuzzy"
    return None


def _token_at(token: str, index: PageIndex) -> int | None:
    """The word a token of a value is printed in: as it is, or, for a word of five letters or more,
    misspelt by a letter or two ("Lieferanten" for "Lieferant", OCR's "Rotterdarn")."""
    if token in index.tokens:
        return index.tokens[token]
    if len(token) < 5 or token.isdigit():
        return None
    near = [(SequenceMatcher(None, token, t).ratio(), i) for t, i in index.tokens.items()
            if abs(len(t) - len(token)) <= 2]
    best = max(near, default=(0.0, None))
    return best[1] if best[0] >= 0.85 else None


def _at_word_start(folded: str, wanted: str) -> int:
    """Where ``wanted`` starts in the folded page text, at a word boundary (-1: nowhere)."""
    for m in re.finditer(re.escape(wanted), folded):
        start, end = m.start(), m.end()
        if (start == 0 or folded[start - 1] == " ") and (end == len(folded) or not folded[end].isalnum()):
            return start
    return -1


def _words(index: PageIndex, first: int, last: int, match: str) -> Found:
    words = index.words[min(first, last):max(first, last) + 1]
    return " ".join(w[4] for w in words), union(words), match
