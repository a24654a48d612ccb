"""One page screened: its kind, whether the model reads it, and its words without quarantined text."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.render.textlayer import Word, has_usable_text, layout_text
from pipeline.screen.injection import quarantine
from pipeline.screen.kinds import extracted, page_kind

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class PageScreen:
    kind: str
    extract: bool  # the model reads this page
    words: list[Word]  # what may be read and grounded in: the visible words, quarantined paragraphs left out
    quarantined: list[str] = field(default_factory=list)  # the paragraphs that spoke to the machine
    quarantined_boxes: list[Box] = field(default_factory=list)


def screen_page(words: Sequence[Word], kinds: Sequence[str], blank_image: bool | None = None,
                unread: bool = False) -> PageScreen:
    """``kinds``: the kinds the schema is for; ``blank_image``: whether the page's image is
    near-uniform (None: not looked at); ``unread``: a model reads the page's image (a VLM), so a
    page whose words are too few to classify is read unless it is blank: its words are not all it has."""
    screened = quarantine(words)
    boxes = [w[:4] for w in screened.removed_words]
    if unread and not has_usable_text(layout_text(screened.kept)):
        kind = "blank" if blank_image else "other"
        return PageScreen(kind, kind != "blank", screened.kept, screened.removed, boxes)
    kind = page_kind(screened.kept, blank_image)
    return PageScreen(kind, extracted(kind, screened.kept, kinds), screened.kept, screened.removed, boxes)


def redact(png: bytes, boxes: Sequence[Box], scale: float) -> bytes:
    """The page image with ``boxes`` (page units) painted over: an image reader (a VLM, the API
    adjudicator) must not read quarantined text either."""
    if not boxes or not png:
        return png
    from PIL import Image, ImageDraw

    with Image.open(io.BytesIO(png)) as im:
        image = im.convert("RGB")
    draw = ImageDraw.Draw(image)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle((x0 * scale - 1, y0 * scale - 1, x1 * scale + 1, y1 * scale + 1), fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
