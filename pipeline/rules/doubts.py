"""Which fields of a page are in doubt: the samples disagree on them, or they are printed nowhere.

Both are decided once, in the worker, beside the page's words: a value the samples agree on
can still be invented, and a small model agrees with itself readily.  The doubtful fields that
matter for the document (``merge.pages.open_disputes``) go to the adjudicator or flag the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.ground.sources import FieldSource, ground_page, ungrounded
from pipeline.merge.pages import open_disputes
from pipeline.render.textlayer import Word


@dataclass(frozen=True)
class Doubts:
    field_sources: dict[str, FieldSource]
    ungrounded_fields: list[str]
    open_fields: list[str]


def page_doubts(record: Any, confidence: dict[str, float], schema: dict[str, Any],
                words: Sequence[Sequence[Word]], page_number: int, page_count: int | None) -> Doubts:
    """``words``: of each page the request read, from ``page_number`` on."""
    sources = ground_page(record, schema, words, page_number)
    missing = ungrounded(sources)
    return Doubts(sources, missing, open_disputes(confidence, schema, page_number, page_count, missing,
                                                  max(1, len(words))))
