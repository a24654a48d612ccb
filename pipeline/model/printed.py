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

# a number as printed, the whole of a word once letters and symbols around it are cut off ("RM64.50",
# "16.80S" with its tax code, "€12"): digits with group and decimal marks, a sign before or after, brackets
_NUMBER = re.compile(r"[-−]?\(?\d+(?:[.,'’]\d+)*\)?-?")
_EDGES = re.compile(r"^[^\d(−-]+|[^\d)−-]+$")
# thousands grouped by spaces ("1 234,56"), read as one number beside its parts
_SPACED = re.compile(r"(?<![\w.,])\d{1,3}(?: \d{3})+(?:[.,]\d{1,4})?(?![\d.,])")
_DATE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")
# not amounts: a leading zero before more digits (0171..., 000119...: phone numbers, ids), nine or more
# digits without a mark (account and receipt numbers)
_NOT_AMOUNT = re.compile(r"^0\d|^\d{9,}$")
MAX_CANDIDATES = 600


def printed_amounts(text: str) -> list[str]:
    """The distinct numbers ``text`` prints, in reading order, each as printed."""
    words = [w for w in (_EDGES.sub("", word) for word in text.split()) if _NUMBER.fullmatch(w)]
    found: dict[str, None] = {}
    for value in [*words, *(m.group() for m in _SPACED.finditer(text))]:
        value = value.replace("−", "-").replace("’", "'")
        bare = value.strip("-()")
        if _DATE.match(bare) or _NOT_AMOUNT.match(bare) or normalize_amount(value) is None:
            continue
        found.setdefault(value, None)
        if len(found) >= MAX_CANDIDATES:
            break
    return list(found)


def printed_grammar(answer_schema: dict[str, Any], schema: dict[str, Any], text: str) -> str | None:
    """The grammar of ``answer_schema`` (``schema``'s) with its amounts limited to the numbers
    ``text`` prints; None when it prints none (the page's grammar is then the schema's own)."""
    amounts = printed_amounts(text)
    return schema_to_gbnf(printed_schema(answer_schema, schema, amounts)) if amounts else None
