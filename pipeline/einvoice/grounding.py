"""Is a value printed on the page?  What separates a page that disagrees with its XML from a misread.

With ``--einvoice verify`` the model's reading of a page is compared with the XML.  Where they
differ, either the page prints another value than its XML (a known error and fraud pattern:
flag it), or the model misread the page (harmless: the document keeps the XML's value).  Looking
both values up in the page's words tells the two apart, with the lookup grounding uses for every
value (``ground.sources.locate``): amounts as numbers in any locale, dates in any common order or
language, text by its words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.consensus.compare import Difference, differences
from pipeline.consensus.normalize import normalize_amount
from pipeline.ground.index import PageIndex
from pipeline.ground.sources import groundable, locate

PRICE_UNITS = (1, 10, 100, 1000)  # a unit price may be quoted per 10, 100 or 1000 units


def shows(page: PageIndex, value: Any, node: dict[str, Any] | None, root: dict[str, Any]) -> bool:
    """Whether the page prints ``value``, as grounding would find it."""
    if isinstance(value, bool) or value in (None, "") or not page.words:
        return False
    kind = groundable(node, root) or ("number" if isinstance(value, (int, float)) else "text")
    if kind == "number":
        number = normalize_amount(value)
        return number is not None and any(locate(number * unit, kind, page, 0)["match"] != "none"
                                          for unit in PRICE_UNITS)
    return locate(value, kind, page, 0)["match"] != "none"


def page_disagrees(difference: Difference, pages: list[PageIndex], root: dict[str, Any]) -> bool:
    """The page shows another value than the XML: it prints what the model read, and not the XML's
    value.  A model value the page does not print is a misreading (or the page does not print that
    field at all); a different number of rows is the model's, row by row differences decide."""
    if difference.path.endswith(".length"):
        return False

    def printed(value: Any) -> bool:
        return any(shows(page, value, difference.node, root) for page in pages)

    return printed(difference.found) and not printed(difference.stated)


def disagreements(found: dict[str, Any], stated: dict[str, Any], schema: dict[str, Any],
                  source: Path) -> tuple[list[str], int]:
    """The fields where the document's pages show other values than its XML (``path: page=...,
    xml=...``), and how many other differences were the model's misreadings."""
    found_differences = differences(found, stated, schema, schema)
    if not found_differences:
        return [], 0
    pages = [PageIndex.build(words) for words in _page_words(source)]
    if not any(page.words for page in pages):  # a scan: nothing to look values up in, every difference stands
        return [str(d) for d in found_differences], 0
    real = [d for d in found_differences if page_disagrees(d, pages, schema)]
    return [str(d) for d in real], len(found_differences) - len(real)


def _page_words(source: Path) -> list[Any]:
    """Every page's text-layer words; none for a scan (then every difference stands: nothing to look up)."""
    from pipeline.render.pages import RenderError, page_count, page_words

    try:
        return [page_words(source, n) for n in range(1, page_count(source) + 1)]
    except RenderError:
        return []
