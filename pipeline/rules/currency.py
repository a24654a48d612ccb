"""The currency from what the pages print, where the model's choice is printed nowhere.

A currency is chosen, not copied (``"x-normalize": "currency"`` fields hold ISO codes), so it is
not looked up like other values; a small model tends to answer with the currency it sees most in
training (EUR, USD) whatever the page says.  The pages say it: ISO codes written out ("EUR",
"CHF") and symbols stuck to the amounts ("$127.50", "€", "£", "CA$").  Where the pages print
exactly one currency and the record holds another one (or none), the record takes the printed
one, and the change is recorded; where they print several, or none, the model's choice stays.
Only symbols and upper-case ISO codes count on their own: words such as "RM" or "zł" are too
short and too common.  Next to an amount with its cents ("RM 96.90", "12,50 zł"; not a room
"RM 1203") or as a column's unit ("Amt(RM)") a word sign of one currency only counts too (a
Malaysian receipt prints "RM" and no ISO code); "kr" (four crowns), "fr." (several francs) and
"Ft" (also feet) never do.

A bare "$" or "¥" is a sign that many currencies use (some twenty dollars and pesos; yen and
yuan).  Printed alone it fills a missing currency (with USD or JPY, recorded), and it overrides a
currency that has a sign of its own which the pages do not show (a euro invoice shows "€" or
"EUR", not "$"); it never overrides one of its own family (CAD, SGD) or one whose sign is a word
the pages need not show as evidence (MYR's "RM": Malaysian receipts print "$" too).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipeline.consensus.compare import field_kind
from pipeline.consensus.normalize import CURRENCY_SYMBOLS, normalize_currency
from pipeline.ground.index import PageIndex

CODES = frozenset(CURRENCY_SYMBOLS.values()) - {"PHP", "TRY", "RON", "ILS"}  # also words and acronyms
SYMBOLS = sorted((s for s in CURRENCY_SYMBOLS if not s.isalpha() and not s.endswith(".")), key=len, reverse=True)
WORDS = {"euro": "EUR", "euros": "EUR"}


AMBIGUOUS = frozenset({"$", "¥"})  # signs that several currencies print
# word signs of one currency each, as printed, and on which side of the amount: evidence only there,
# or as a column's unit "(RM)"
WORD_SIGNS = {"RM": ("MYR", "before"), "zł": ("PLN", "after"), "Kč": ("CZK", "after"), "lei": ("RON", "after")}
_CENTS = r"\d[\d.,' ]*[.,]\d\d(?!\d)"
_WORD_SIGN = re.compile("|".join(  # each sign's group is named by its ISO code
    rf"(?P<{code}>" + (rf"(?<![^\W\d_]){re.escape(s)}\s?{_CENTS}" if side == "before"
                       else rf"{_CENTS}\s?{re.escape(s)}(?![^\W\d_])") + rf"|\({re.escape(s)}\))"
    for s, (code, side) in WORD_SIGNS.items()))


def printed_currencies(pages: Sequence[PageIndex]) -> dict[str, tuple[str, bool]]:
    """ISO code -> (first word that shows it, whether every sighting was an ambiguous sign)."""
    found: dict[str, tuple[str, bool]] = {}
    for page in pages:
        texts = [w[4] for w in page.words]
        for i, word in enumerate(texts):
            codes = _codes(word)
            following = f"{word} {texts[i + 1]}" if i + 1 < len(texts) else word
            codes += [(str(m.lastgroup), False) for m in _WORD_SIGN.finditer(following)]
            for code, ambiguous in codes:
                first, only_ambiguous = found.get(code, (word, True))
                found[code] = (first, only_ambiguous and ambiguous)
    return found


def _codes(word: str) -> list[tuple[str, bool]]:
    codes = [(m, False) for m in re.findall(r"(?<![A-Za-z])[A-Z]{3}(?![A-Za-z])", word) if m in CODES]
    bare = word.strip(".,:;()").lower()
    if bare in WORDS:
        codes.append((WORDS[bare], False))
    lowered = word.lower()
    for symbol in SYMBOLS:  # "hk$" before "$": a longer symbol takes its characters first
        if symbol in lowered:
            codes.append((CURRENCY_SYMBOLS[symbol], symbol in AMBIGUOUS))
            lowered = lowered.replace(symbol, " ")
    return codes


def _signs(code: str) -> list[str]:
    return [s for s, c in CURRENCY_SYMBOLS.items() if c == code and s in SYMBOLS]


def _contradicts(ambiguous: bool, held: str | None) -> bool:
    """Whether the one printed currency overrides the record's ``held`` one (see the module docstring)."""
    if held is None or not ambiguous:
        return True
    own = _signs(held)
    family = any(a in s for s in own for a in AMBIGUOUS)
    return bool(own) and not family


def settle_currency(record: dict[str, Any], schema: dict[str, Any],
                    pages: Sequence[PageIndex]) -> tuple[dict[str, Any], list[str]]:
    """``record`` with each top-level currency field set to the one currency the pages print, and what changed."""
    fields = [k for k, v in (schema.get("properties") or {}).items()
              if isinstance(v, dict) and field_kind(v, schema) == "currency"]
    if not fields:
        return record, []
    printed = printed_currencies(pages)
    if len(printed) != 1:
        return record, []
    (code, (word, ambiguous)), = printed.items()
    notes = []
    for name in fields:
        held = record.get(name)
        held_code = normalize_currency(held) if isinstance(held, str) else None
        if held_code != code and _contradicts(ambiguous, held_code):
            record = {**record, name: code}
            notes.append(f"{name}: {held} -> {code} (the only currency the pages print: {word!r})")
    return record, notes
