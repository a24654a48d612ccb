"""Is a value printed on the page?  What separates a page that disagrees with its XML from a misread.

With ``--einvoice verify`` the model's reading of a page is compared with the XML.  Where they
differ, either the page prints another value than its XML (a known error and fraud pattern:
flag it), or the model misread the page (harmless: the document keeps the XML's value).  Looking
both values up in the page's own text tells the two apart, as the schema types them: amounts as
numbers in any locale, dates in any common order or language, text by its words.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pipeline.consensus.compare import Difference, differences, field_kind, fold
from pipeline.consensus.normalize import clean_text, normalize_amount, normalize_date
from pipeline.consensus.tolerance import HALF_CENT

_AMOUNTS = re.compile(r"\d{1,3}(?:[ \u00a0\u202f']\d{3})+(?:[.,]\d+)?|\d[\d.,']*")
_DATES = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}\.?\s+[^\W\d_]{3,12}\.?\s+\d{2,4}|"
                    r"[^\W\d_]{3,12}\.?\s+\d{1,2},?\s+\d{4}|\d{8}")


class PageText:
    """A page's text, with its amounts, dates and folded words found once."""

    def __init__(self, text: str) -> None:
        self.folded = fold(clean_text(text)) if text else ""
        self.squeezed = re.sub(r"\s+", "", self.folded)
        self.amounts = {a for a in (normalize_amount(t) for t in _AMOUNTS.findall(text)) if a is not None}
        self.dates = {d for d in (normalize_date(t) for t in _DATES.findall(text)) if d is not None}

    def shows(self, value: Any, node: dict[str, Any] | None, root: dict[str, Any] | None) -> bool:
        """Whether the page prints ``value``: an amount as a number (or per 10, 100 or 1000 units, as
        prices are quoted), a date in any order or language, text with its words in any layout."""
        if isinstance(value, bool) or value is None or value == "" or not self.folded:
            return False
        kind = field_kind(node, root)
        if kind == "number" or isinstance(value, (int, float)):
            number = normalize_amount(value)
            return number is not None and any(abs(abs(a) - abs(number * scale)) <= HALF_CENT
                                              for a in self.amounts for scale in (1, 10, 100, 1000))
        if kind == "date":
            return normalize_date(value) in self.dates
        text = fold(value)
        words = [w for w in re.findall(r"\w+", text) if len(w) >= 3]
        return bool(text) and (text in self.folded or re.sub(r"\s+", "", text) in self.squeezed or
                               bool(words) and all(w in self.folded for w in words))


def page_disagrees(difference: Difference, pages: list[PageText], root: dict[str, Any] | None) -> bool:
    """The page shows another value than the XML: it prints what the model read, and not the XML's
    value.  A model value the page does not print is a misreading (or the page does not print that
    field at all); a different number of rows is the model's, row by row differences decide."""
    if difference.path.endswith(".length"):
        return False
    shows = lambda value: any(page.shows(value, difference.node, root) for page in pages)  # noqa: E731
    return shows(difference.found) and not shows(difference.stated)


def disagreements(found: dict[str, Any], stated: dict[str, Any], schema: dict[str, Any],
                  source: Path) -> tuple[list[str], int]:
    """The fields where the document's pages show other values than its XML (``path: page=...,
    xml=...``), and how many other differences were the model's misreadings."""
    found_differences = differences(found, stated, schema, schema)
    if not found_differences:
        return [], 0
    pages = [PageText(text) for text in _page_texts(source)]
    if not any(page.folded for page in pages):  # a scan: nothing to look values up in, every difference stands
        return [str(d) for d in found_differences], 0
    real = [d for d in found_differences if page_disagrees(d, pages, schema)]
    return [str(d) for d in real], len(found_differences) - len(real)


def _page_texts(source: Path) -> list[str]:
    """Every page's text layer; none for a scan (then every difference stands: nothing to look up)."""
    from pipeline.render.pages import RenderError, page_count, page_text

    try:
        return [page_text(source, n) for n in range(1, page_count(source) + 1)]
    except RenderError:
        return []
