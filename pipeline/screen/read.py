"""The model's input for a page: its image, its text (text layer, or OCR for a scan), or both."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.render.pages import RenderError, read_words, render_page
from pipeline.render.textlayer import OcrEngine, Word, has_usable_text, layout_text
from pipeline.results import PAGES_READ
from pipeline.screen.blank import blank_image
from pipeline.screen.kinds import extracted, schema_kinds
from pipeline.screen.page import PageScreen, redact, screen_page


@dataclass(frozen=True)
class PageInput:
    source_path: str
    page_number: int
    png: bytes
    text: str
    # the words of each page read (from page_number on; one page unless --read-pages groups them),
    # with boxes in PDF points (pixels for an image file): where values are looked up
    # (pipeline.ground); the text layer's words even when the model reads the image.  Only what a
    # person can see and the screening let through (pipeline.screen); none for a page not extracted.
    words: tuple[tuple[Word, ...], ...] = ()
    kinds: tuple[str, ...] = ()  # each page's kind (pipeline.screen.kinds)
    extract: bool = True  # some page of the request is of a kind the schema is for: the model reads it
    hidden_chars: int = 0  # characters of text layer nobody can see, left out (pipeline.render.visible)
    quarantined: tuple[str, ...] = ()  # paragraphs that spoke to the machine, left out (pipeline.screen.injection)


class LazyOcr:
    """Loads rapidocr on the first page that needs it: most PDFs never do.  ``threads`` and
    ``line_orientation``: the worker's (``OcrEngine``)."""

    def __init__(self, threads: int = 0, line_orientation: bool = True) -> None:
        self._engine: OcrEngine | None = None
        self.threads = threads
        self.line_orientation = line_orientation

    def words(self, png: bytes) -> list[Word]:
        if self._engine is None:
            self._engine = OcrEngine(self.threads, self.line_orientation)
        return self._engine.words(png)


def read_page(backend: Any, task: dict[str, Any], dpi: int, max_pixels: int, ocr: LazyOcr,
              schema: dict[str, Any] | None = None) -> tuple[PageInput, str]:
    """The model's input for a page and where it came from: layer, ocr, image, or image+layer /
    image+ocr for a VLM with a dual view (image+none: the page has no text to read).  Every page is
    screened first (``pipeline.screen``): its kind (only the kinds ``schema`` is for are read), and
    its words without quarantined text."""
    path, number = Path(task["source_path"]), int(task["page_number"])
    kinds = schema_kinds(schema or {})
    if getattr(backend, "needs_text", False):
        span = int(task.get(PAGES_READ) or 1)
        if span > 1:
            return _group(path, number, span, kinds), "layer"
        words, hidden = read_words(path, number)
        if has_usable_text(layout_text(words)):
            return _screened(path, number, b"", 1.0, [screen_page(words, kinds)], hidden), "layer"
        rendered = render_page(path, number, dpi, max_pixels)
        if blank_image(rendered.png):
            return _screened(path, number, rendered.png, rendered.scale, [screen_page([], kinds, True)], hidden), "ocr"
        words = _ocr(ocr, rendered.png, rendered.scale)
        return _screened(path, number, rendered.png, rendered.scale, [screen_page(words, kinds, False)], hidden), "ocr"
    rendered = render_page(path, number, dpi, max_pixels)
    png, scale, hidden = rendered.png, rendered.scale, rendered.hidden_chars
    if has_usable_text(rendered.text):
        screen = screen_page(rendered.words, kinds)
        return _screened(path, number, png, scale, [screen], hidden), "image+layer" if backend.dual_view else "image"
    blank = blank_image(png)
    if not backend.dual_view or blank:
        return _screened(path, number, png, scale, [screen_page([], kinds, blank, unread=True)], hidden), \
            "image+none" if backend.dual_view else "image"
    words = _ocr(ocr, png, scale)
    screen = screen_page(words, kinds, False, unread=True)
    if has_usable_text(layout_text(screen.words)):
        return _screened(path, number, png, scale, [screen], hidden), "image+ocr"
    return _screened(path, number, png, scale, [screen], hidden, with_text=False), "image+none"


def _screened(path: Path, first: int, png: bytes, scale: float, screens: Sequence[PageScreen], hidden: int,
              with_text: bool = True) -> PageInput:
    """The input of screened pages: the text of the extracted ones (each under a line naming its
    page when there are several), the image with quarantined text painted over."""
    texts = [(first + i, layout_text(s.words)) for i, s in enumerate(screens) if s.extract]
    text = texts[0][1] if len(screens) == 1 and texts else "\n".join(f"=== page {n} ===\n{t}" for n, t in texts)
    return PageInput(str(path), first, redact(png, [b for s in screens for b in s.quarantined_boxes], scale),
                     text if with_text else "", tuple(tuple(s.words) if s.extract else () for s in screens),
                     kinds=tuple(s.kind for s in screens), extract=any(s.extract for s in screens),
                     hidden_chars=hidden, quarantined=tuple(q for s in screens for q in s.quarantined))


def _group(path: Path, first: int, span: int, kinds: Sequence[str]) -> PageInput:
    """Pages read in one request (``--read-pages``): their text layers, each under a line naming
    its page, so the model reads the document's header, rows and totals in one context."""
    read = [read_words(path, n) for n in range(first, first + span)]
    screens = [screen_page(w, kinds) for w, _ in read]
    if any(s.kind in kinds for s in screens):  # the document's other pages with it: its header, its rows
        screens = [dataclasses.replace(s, extract=extracted(s.kind, s.words, kinds, True)) for s in screens]
    return _screened(path, first, b"", 1.0, screens, sum(h for _, h in read))


def _ocr(ocr: LazyOcr, png: bytes, scale: float) -> list[Word]:
    """OCR words, their pixel boxes brought back to the page's units (points for a PDF)."""
    try:
        return [(x0 / scale, y0 / scale, x1 / scale, y1 / scale, t) for x0, y0, x1, y1, t in ocr.words(png)]
    except Exception as exc:
        raise RenderError(f"ocr failed: {' '.join(str(exc).split())[:200]}") from None


