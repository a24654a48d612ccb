"""The numbers a page prints, as printed: the only values an amount field may take under
``--amounts printed``.

Small models copy well and compute badly: asked for a receipt's total they add the GST to a
total that already holds it; asked for a net amount they sum the rows.  Restricting an amount
field's grammar to the numbers printed on the page (or null) turns writing an amount into
choosing one, so a computed or misformatted amount cannot be produced.  Numbers are taken from
the text the model reads, in the form it reads them (``1.234,56``, ``12,179.15``, ``1 234,56``,
``12.00-``, ``(5.00)``), and kept only where they read as an amount.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.consensus.normalize import normalize_amount
from pipeline.schema.grammar import printed_schema, schema_to_gbnf

_THIN = "\u00a0\u202f\u2009"  # no-break and thin spaces: thousands marks inside one printed number
# a word holding a number: letters or a currency before or after it ("-£117.16", "RM64.50", "16.80S"),
# digits with group and decimal marks, a sign before or after, brackets
_WORD = re.compile(rf"[^\d\-−(]*(?P<sign>[-−]?\(?)[^\d\-−(]{{0,3}}(?P<digits>\d(?:[\d.,'’{_THIN}]*\d)?)"
                   rf"(?P<close>\)?-?)[^\d]*")
_TRAILING = re.compile(r"[.,:;]+$")
# thousands grouped by plain spaces ("1 234,56"), read as one number beside its parts
_SPACED = re.compile(r"(?<![\w.,])\d{1,3}(?: \d{3})+(?:[.,]\d{1,4})?(?![\d.,])")
_DATE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")
# not amounts: a leading zero before more digits (0171..., 000119...: phone numbers, ids), nine or more
# digits without a mark (account and receipt numbers)
_NOT_AMOUNT = re.compile(r"^0\d|^\d{9,}$")
MAX_CANDIDATES = 600


def printed_amounts(text: str) -> list[str]:
    """The distinct numbers ``text`` prints, in reading order: each word that holds one, as the bare
    number (``-£117.16`` -> ``-117.16``) and, where it differs, as printed (``-£117.16``)."""
    found: dict[str, None] = {}
    words = re.split(r"[ \t\n\r\f\v]+", text)  # not at no-break or thin spaces: "2 217,42" is one number
    for word in [*(_TRAILING.sub("", w) for w in words), *(m.group() for m in _SPACED.finditer(text))]:
        match = _SPACED.fullmatch(word) or _WORD.fullmatch(word)
        if not match:
            continue
        if match.re is _SPACED:
            bare = word
        else:
            sign, close = match["sign"], match["close"]
            if ("(" in sign) != (")" in close):  # "(835643-A)": a bracket around an id, not a negative amount
                sign, close = sign.replace("(", ""), close.replace(")", "")
            bare = (sign + match["digits"] + close).replace("−", "-")
        digits = bare.strip("-()")
        amount = normalize_amount(bare)
        if _DATE.match(digits) or _NOT_AMOUNT.match(digits) or amount is None:
            continue
        found.setdefault(bare, None)
        if word != bare and normalize_amount(word) == amount:
            found.setdefault(word, None)
        if len(found) >= MAX_CANDIDATES:
            break
    return list(found)


def printed_grammar(answer_schema: dict[str, Any], schema: dict[str, Any], text: str) -> str | None:
    """The grammar of ``answer_schema`` (``schema``'s) with its amounts limited to the numbers
    ``text`` prints; None when it prints none (the page's grammar is then the schema's own)."""
    amounts = printed_amounts(text)
    return schema_to_gbnf(printed_schema(answer_schema, schema, amounts)) if amounts else None
