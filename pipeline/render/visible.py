"""Which words of a PDF's text layer a person can see.

A text layer can hold text nobody sees: white on white, the colour of a box behind it, drawn
invisibly (render mode 3), covered by a shape or an image, in a switched-off layer, too small
to read, or outside the page.  A model reading the text layer would read it all, so text that
is not visible is not page content: it is left out of what the model reads and of the words
values are grounded in, and counted (``hidden_text_chars``).

Visibility is decided by looking, not by parsing every way a PDF can hide text: the page is
rendered at low resolution and a span whose box shows no contrast at all has nothing drawn
there that a reader could see (this covers colours, render modes, covering shapes, clipping
and optional content alike).  A span in a size below ``MIN_READABLE_PT`` is hidden too: it is
on the page only for a machine.  The invisible OCR layer of a scanned PDF lies over the scan's
own glyphs, so it shows contrast and stays.
"""

from __future__ import annotations

from typing import Any

from pipeline.render.textlayer import Word, pdf_page_words

MIN_READABLE_PT = 5.0  # text smaller than this is not meant for a person
LOOK_DPI = 72  # resolution of the rendering the spans are checked on
MIN_CONTRAST = 24  # 0-255: less than this between the lightest and darkest pixel of a span's box is nothing seen


def visible_words(page: Any) -> tuple[list[Word], int]:
    """The words of a PyMuPDF page a person can see, and the characters of the ones they cannot."""
    words = pdf_page_words(page)
    unseen = _outside_or_switched_off(page, words)
    if not words:
        return words, unseen
    hidden = hidden_boxes(page)
    if not hidden:
        return words, unseen
    kept = [w for w in words if not _inside_any(w, hidden)]
    return kept, unseen + sum(len(w[4]) for w in words) - sum(len(w[4]) for w in kept)


def _outside_or_switched_off(page: Any, shown: list[Word]) -> int:
    """Characters MuPDF leaves out of the words by itself: text outside the page's visible box, and
    text in optional-content layers that are switched off.  Not read either way, but counted: text
    placed where nobody sees it is a sign of intent.  The document is changed in memory only, and
    changed back."""
    doc = page.parent
    try:
        switched = [c["number"] for c in doc.layer_ui_configs() if not c.get("on")] if doc is not None else []
        crop, media = page.cropbox, page.mediabox
        if not switched and crop == media:
            return 0
        for number in switched:
            doc.set_layer_ui_config(number, action=0)
        page.set_cropbox(media)
        try:
            every = sum(len(w[4]) for w in page.get_text("words", sort=False))
        finally:
            page.set_cropbox(crop)
            for number in switched:
                doc.set_layer_ui_config(number, action=2)
    except (ValueError, RuntimeError):  # a box MuPDF will not set (rotated, odd boxes): only the count is lost,
        return 0  # the text was not going to be read either way
    return max(0, every - sum(len(w[4]) for w in shown))


def hidden_boxes(page: Any) -> list[tuple[float, float, float, float]]:
    """Boxes (points) of the text spans on ``page`` that nobody can see."""
    import numpy as np
    import pymupdf as fitz

    spans = [s for block in page.get_text("dict", sort=False)["blocks"] if block.get("type") == 0
             for line in block["lines"] for s in line["spans"] if s["text"].strip()]
    if not spans:
        return []
    zoom = LOOK_DPI / 72.0
    pix = page.get_pixmap(matrix=fitz.Matrix(zoom, zoom), colorspace=fitz.csGRAY, alpha=False)
    image = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width)
    area = page.rect
    boxes = []
    for span in spans:
        x0, y0, x1, y1 = span["bbox"]
        # not span["alpha"]: MuPDF gives invisible text (render mode 3) alpha 0, and the OCR layer of
        # a scan is invisible text over visible glyphs
        if (span["size"] < MIN_READABLE_PT
                or x1 <= area.x0 or y1 <= area.y0 or x0 >= area.x1 or y0 >= area.y1
                or _blank(image, (x0 - area.x0) * zoom, (y0 - area.y0) * zoom, (x1 - area.x0) * zoom,
                          (y1 - area.y0) * zoom)):
            boxes.append((x0, y0, x1, y1))
    return boxes


def _blank(image: Any, x0: float, y0: float, x1: float, y1: float) -> bool:
    """Nothing visible in the box: every pixel about the same shade."""
    height, width = image.shape
    c0, r0 = max(0, int(x0)), max(0, int(y0))
    c1, r1 = min(width, max(c0 + 1, int(round(x1)))), min(height, max(r0 + 1, int(round(y1))))
    if c0 >= width or r0 >= height:
        return True
    region = image[r0:r1, c0:c1]
    return int(region.max()) - int(region.min()) < MIN_CONTRAST


def _inside_any(word: Word, boxes: list[tuple[float, float, float, float]]) -> bool:
    cx, cy = (word[0] + word[2]) / 2, (word[1] + word[3]) / 2
    return any(x0 - 0.5 <= cx <= x1 + 0.5 and y0 - 0.5 <= cy <= y1 + 0.5 for x0, y0, x1, y1 in boxes)
