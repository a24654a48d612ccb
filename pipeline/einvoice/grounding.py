"""Is a value printed on the page?  What separates a page that disagrees with its XML from a misread.

With ``--einvoice verify`` the model's reading of a page is compared with the XML.  Where they
differ, either the page shows something else (a known error and fraud pattern: flag it) or
the model misread a page that does show the XML's value (harmless: the document keeps the XML's
value).  Looking the XML's value up in the page's own text tells the two apart, as the schema
types it: amounts as numbers in any locale, dates in any common order or language, text folded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pipeline.consensus.compare import Difference, differences, field_kind, fold
from pipeline.consensus.normalize import clean_text, normalize_amount, normalize_date

_AMOUNTS = re.compile(r"\d{1,3}(?:[ \u00a0\u202f']\d{3})+(?:[.,]\d+)?|\d[\d.,']*")
_DATES = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}\.?\s+[^\W\d_]{3,12}\.?\s+\d{2,4}|"
                    r"[^\W\d_]{3,12}\.?\s+\d{1,2},?\s+\d{4}|\d{8}")


class PageText:
    """A page's text, with its amounts, dates and folded words found once."""

    def __init__(self, text: str) -> None:
        self.folded = fold(clean_text(text)) if text else ""
        self.amounts = {a for a in (normalize_amount(t) for t in _AMOUNTS.findall(text)) if a is not None}
        self.dates = {d for d in (normalize_date(t) for t in _DATES.findall(text)) if d is not None}

    def shows(self, value: Any, node: dict[str, Any] | None, root: dict[str, Any] | None) -> bool:
        kind = field_kind(node, root)
        if isinstance(value, bool) or value is None or not self.folded:
            return False
        if kind == "number" or isinstance(value, (int, float)):
            number = normalize_amount(value)
            return number is not None and any(abs(abs(a) - abs(number)) <= 0.005 for a in self.amounts)
        if kind == "date":
            return normalize_date(value) in self.dates
        return bool(fold(value)) and fold(value) in self.folded


def page_disagrees(difference: Difference, pages: list[PageText], root: dict[str, Any] | None) -> bool:
    """True unless some page shows the XML's value (then the model misread it)."""
    if difference.path.endswith(".length"):
        return True  # a different number of rows: nothing to look up
    return not any(page.shows(difference.stated, difference.node, root) for page in pages)


def disagreements(found: dict[str, Any], stated: dict[str, Any], schema: dict[str, Any],
                  source: Path) -> tuple[list[str], int]:
    """The fields where the document's pages disagree with its XML (``path: page=..., xml=...``),
    and how many other differences were the model's misreading of a page that shows the XML's value."""
    found_differences = differences(found, stated, schema, schema)
    if not found_differences:
        return [], 0
    pages = [PageText(text) for text in _page_texts(source)]
    real = [d for d in found_differences if page_disagrees(d, pages, schema)]
    return [str(d) for d in real], len(found_differences) - len(real)


def _page_texts(source: Path) -> list[str]:
    """Every page's text layer; none for a scan (then every difference stands: nothing to look up)."""
    from pipeline.render.pages import RenderError, page_count, page_text

    try:
        return [page_text(source, n) for n in range(1, page_count(source) + 1)]
    except RenderError:
        return []
