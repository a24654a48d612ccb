"""The currency from what the pages print and what their identifiers prove, or a doubt.

A currency is chosen, not copied (``"x-normalize": "currency"`` fields hold ISO codes), so it is
not looked up like other values; a small model answers with the currency it sees most in
training (EUR, USD) whatever the page says.  The pages say it: ISO codes written out ("EUR"),
symbols stuck to the amounts ("$127.50", "€", "CA$"), and letter signs next to an amount with
its cents ("RM 96.90", "12,50 zł", "1 939,00 kr"; not a room "RM 1203").  Which currencies a
sign stands for comes from CLDR (``consensus.locale``): "kr" is three crowns, "$" five dollars
among the invoice schema's currencies.  A shared sign is settled by the countries the page's VAT
ids and IBANs prove (``rules.evidence``: a Norwegian VAT id makes "kr" NOK), never by a default.

Where the pages decide one currency, the record takes it (recorded in ``repairs``).  Where they
print only a shared sign that nothing settles, or no currency at all, or several, and the record's
value is not the one they prove, the field is in doubt with the reason: flagged, not guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipeline.consensus.compare import field_kind
from pipeline.consensus.locale import sign_currencies, symbols_longest_first
from pipeline.consensus.normalize import normalize_currency
from pipeline.ground.index import PageIndex
from pipeline.rules.evidence import Doubt, countries, currencies_of

ALSO_WORDS = frozenset({"PHP", "TRY", "RON", "ILS"})  # ISO codes that are also words: only next to an amount
_CENTS = r"\d[\d.,' ]*[.,]\d\d(?!\d)"


def _sightings(pages: Sequence[PageIndex], allowed: frozenset[str] | None) -> list[tuple[str, frozenset[str]]]:
    """Each currency sign the pages print, as (the word, the currencies it may stand for)."""
    found = []
    for page in pages:
        texts = [w[4] for w in page.words]
        for i, word in enumerate(texts):
            near = " ".join(texts[max(0, i - 3):i + 4])  # an amount in groups spans words: "1 939,00"
            for code in re.findall(r"(?<![A-Za-z])[A-Z]{3}(?![A-Za-z])", word):
                codes = sign_currencies(code, allowed)
                if codes == {code} and (code not in ALSO_WORDS or _by_amount(code, near)):
                    found.append((word, codes))
            rest = word.casefold()
            for symbol in symbols_longest_first():
                if symbol not in rest or len(symbol) == 1 and symbol.isalpha():
                    continue
                if symbol.isalpha() and not (_alone(symbol, rest) and _by_amount(symbol, near.casefold())):
                    continue  # a letter sign counts only next to an amount with cents, or as a unit "(RM)"
                if codes := sign_currencies(symbol, allowed):
                    found.append((word, codes))
                rest = rest.replace(symbol, " ")
    return found


def _alone(sign: str, word: str) -> bool:
    """The word is the sign, the sign fused to a number ("RM96.90"), or a unit ("Amt(RM)"): not "form"."""
    s = re.escape(sign)
    return bool(re.fullmatch(rf"\(?{s}\)?[:.]?|{s}[\d.,']+|[\d.,']+{s}|.*\({s}\)[:.]?", word))


def _by_amount(sign: str, text: str) -> bool:
    s = re.escape(sign)
    return bool(re.search(rf"(?<![^\W\d_]){s}\s?{_CENTS}|{_CENTS}\s?{s}(?![^\W\d_])|\({s}\)", text))


def repair_currency(record: dict[str, Any], schema: dict[str, Any], pages: Sequence[PageIndex],
                    proven: frozenset[str] | None = None) -> tuple[dict[str, Any], list[str], list[Doubt]]:
    """``record`` with each top-level currency field set to the one currency the pages prove; the
    notes of what changed, and the currency fields left in doubt with why."""
    fields = [k for k, v in (schema.get("properties") or {}).items()
              if isinstance(v, dict) and field_kind(v, schema) == "currency"]
    if not fields or not any(p.words for p in pages):
        return record, [], []
    notes: list[str] = []
    doubts: list[Doubt] = []
    proven = countries(pages) if proven is None else proven
    for name in fields:
        enum = (schema["properties"][name].get("enum") or None)
        allowed = frozenset(v for v in enum if isinstance(v, str)) if enum else None
        held = record.get(name)
        held_code = normalize_currency(held, allowed) if isinstance(held, str) else None
        by_country = currencies_of(proven) & allowed if allowed else currencies_of(proven)
        code, why, printed, family = _decide(_sightings(pages, allowed), by_country, proven)
        if code is not None and held_code != code:
            record = {**record, name: code}
            notes.append(f"{name}: {held} -> {code} ({why})")
        elif code is None and held_code not in printed:
            doubts.append((name, why))
            if held is not None and family and held_code not in family:  # EUR on a page of "$" only
                record = {**record, name: None}
                notes.append(f"{name}: {held} -> null (the pages print no sign of it; {why})")
    return record, notes, doubts


def _decide(sightings: list[tuple[str, frozenset[str]]], by_country: frozenset[str],
            proven: frozenset[str]) -> tuple[str | None, str, set[str], frozenset[str]]:
    """The one currency the signs and the countries prove, and why; or None, why not, the
    currencies the pages do print each for sure (a record holding one of several printed ones
    keeps it: an invoice in dollars may print the euro equivalent), and the currencies a shared
    sign left open may be."""
    sure = {next(iter(codes)) for _, codes in sightings if len(codes) == 1}
    shared = [(word, codes) for word, codes in sightings if len(codes) > 1]
    open_signs = []
    for word, codes in shared:
        if codes & sure:
            continue
        if len(codes & by_country) == 1:
            sure |= codes & by_country
        else:
            open_signs.append((word, codes))
    where = f"the {'VAT id or IBAN of ' + ', '.join(sorted(proven)) if proven else 'page'}"
    if len(sure) == 1 and not open_signs:
        (code,) = sure
        word = next((w for w, c in sightings if code in c), code)
        return code, f"the only currency the pages print: {word!r}" + (
            f", settled by {where}" if any(len(c) > 1 for _, c in sightings) else ""), sure, frozenset()
    if len(sure) > 1:
        return None, f"the pages print several currencies: {', '.join(sorted(sure))}", sure, frozenset()
    if open_signs and sure:  # "EUR" for sure, and a "$" beside it ("nach $4 UStG": a "§" the text layer misread)
        word, codes = open_signs[0]
        return None, (f"the pages print {', '.join(sorted(sure))} and {word!r}, which is "
                      f"{' or '.join(sorted(codes))}"), sure, codes
    if open_signs:
        word, codes = open_signs[0]
        return None, (f"the pages print only {word!r}, which is {' or '.join(sorted(codes))}; "
                      "nothing on them says which"), set(), codes
    if len(by_country) == 1:
        (code,) = by_country
        return code, f"no currency printed; the currency of {where}", sure, frozenset()
    return None, "no currency printed on the pages", set(), frozenset()
