"""The model's input for a page: its image, its text (text layer, or OCR for a scan), or both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.render.pages import RenderError, page_words, render_page
from pipeline.render.textlayer import OcrEngine, Word, has_usable_text, layout_text
from pipeline.results import SPAN


@dataclass(frozen=True)
class PageInput:
    source_path: str
    page_number: int
    png: bytes
    text: str
    # the words of each page read (from page_number on; one page unless --read-pages groups them),
    # with boxes in PDF points (pixels for an image file): where values are looked up
    # (pipeline.ground); the text layer's words even when the model reads the image
    words: tuple[tuple[Word, ...], ...] = ()


class LazyOcr:
    """Loads rapidocr on the first page that needs it: most PDFs never do."""

    def __init__(self) -> None:
        self._engine: OcrEngine | None = None

    def words(self, png: bytes) -> list[Word]:
        if self._engine is None:
            self._engine = OcrEngine()
        return self._engine.words(png)


def read_page(backend: Any, task: dict[str, Any], dpi: int, max_pixels: int,
              ocr: LazyOcr) -> tuple[PageInput, str]:
    """The model's input for a page and where it came from: layer, ocr, image, or image+layer /
    image+ocr for a VLM with a dual view (image+none: the page has no text to read)."""
    path, number = Path(task["source_path"]), int(task["page_number"])
    if getattr(backend, "needs_text", False):
        span = int(task.get(SPAN) or 1)
        if span > 1:
            return _group(path, number, span), "layer"
        words = page_words(path, number)
        text = layout_text(words)
        if has_usable_text(text):
            return PageInput(str(path), number, b"", text, (tuple(words),)), "layer"
        rendered = render_page(path, number, dpi, max_pixels)
        words = _ocr(ocr, rendered.png, rendered.scale)
        return PageInput(str(path), number, rendered.png, layout_text(words), (tuple(words),)), "ocr"
    rendered = render_page(path, number, dpi, max_pixels)
    if not backend.dual_view:
        return PageInput(str(path), number, rendered.png, rendered.text, (rendered.words,)), "image"
    if has_usable_text(rendered.text):
        return PageInput(str(path), number, rendered.png, rendered.text, (rendered.words,)), "image+layer"
    words = _ocr(ocr, rendered.png, rendered.scale)
    text = layout_text(words)
    if has_usable_text(text):
        return PageInput(str(path), number, rendered.png, text, (tuple(words),)), "image+ocr"
    return PageInput(str(path), number, rendered.png, ""), "image+none"  # nothing for a text view to read


def _group(path: Path, first: int, span: int) -> PageInput:
    """Pages read in one request (``--read-pages``): their text layers, each under a line naming
    its page, so the model reads the document's header, rows and totals in one context."""
    words = [page_words(path, n) for n in range(first, first + span)]
    text = "\n".join(f"=== page {first + i} ===\n{layout_text(w)}" for i, w in enumerate(words))
    return PageInput(str(path), first, b"", text, tuple(tuple(w) for w in words))


def _ocr(ocr: LazyOcr, png: bytes, scale: float) -> list[Word]:
    """OCR words, their pixel boxes brought back to the page's units (points for a PDF)."""
    try:
        return [(x0 / scale, y0 / scale, x1 / scale, y1 / scale, t) for x0, y0, x1, y1, t in ocr.words(png)]
    except Exception as exc:
        raise RenderError(f"ocr failed: {' '.join(str(exc).split())[:200]}") from None


