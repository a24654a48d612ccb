"""Turning document pages into images (and keeping their text layer).

PDF pages are rasterised with PyMuPDF at ``dpi``; image files are read with Pillow at their
own resolution (multi-frame TIFFs give one page per frame).  A max-pixels guard scales down
any page whose raster would exceed the budget, so a poster-sized page cannot exhaust a
worker's memory.  The page's text layer is kept beside the image: later stages (the text
backend, adjudication) use it.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

from pipeline.render.textlayer import MIN_TEXT_CHARS, Word, layout_text
from pipeline.render.visible import visible_words
from pipeline.sources.discover import kind_of


class RenderError(Exception):
    """A page that cannot be rendered; becomes an error row, never a crash."""


@dataclass(frozen=True)
class RenderedPage:
    png: bytes
    width: int
    height: int
    text: str
    words: tuple[Word, ...] = ()  # the text layer's words a person can see, in points
    scale: float = 1.0  # pixels per page unit (point for a PDF, pixel for an image file)
    hidden_chars: int = 0  # characters of the text layer nobody can see (render.visible), left out of words


def page_count(path: Path) -> int:
    """Number of pages, without rendering any; raises RenderError on a broken file."""
    try:
        if kind_of(path) == "xml":
            return 1  # an e-invoice XML is one document of one "page": its data, read by pipeline.einvoice
        if kind_of(path) == "pdf":
            import pymupdf as fitz

            with fitz.open(path) as doc:
                if doc.needs_pass:
                    raise RenderError("encrypted PDF (password required)")
                if doc.page_count < 1:
                    raise RenderError("PDF has no pages")
                return int(doc.page_count)
        from PIL import Image

        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1))
    except RenderError:
        raise
    except Exception as exc:  # PyMuPDF and Pillow raise many types for corrupt files
        raise RenderError(f"cannot open {kind_of(path)}: {_short(exc)}") from None


def render_page(path: Path, page_number: int, dpi: int, max_pixels: int) -> RenderedPage:
    """Render page ``page_number`` (1-based) of ``path`` to PNG plus its text layer."""
    if kind_of(path) == "xml":
        raise RenderError("an e-invoice XML has no page for a model to read")
    try:
        if kind_of(path) == "pdf":
            return _render_pdf_page(path, page_number, dpi, max_pixels)
        return _render_image_page(path, page_number, max_pixels)
    except RenderError:
        raise
    except Exception as exc:
        raise RenderError(f"cannot render page {page_number}: {_short(exc)}") from None


def page_text(path: Path, page_number: int) -> str:
    """The text layer of a page, laid out as on the page ("" for images: they have none)."""
    return layout_text(page_words(path, page_number))


def page_words(path: Path, page_number: int) -> list[Word]:
    """The visible words of a page's text layer with their boxes in points ([] for images: they have none)."""
    return read_words(path, page_number)[0]


def read_words(path: Path, page_number: int) -> tuple[list[Word], int]:
    """The visible words of a page's text layer, and the characters of it nobody can see."""
    if kind_of(path) != "pdf":
        return [], 0
    try:
        import pymupdf as fitz

        with fitz.open(path) as doc:
            return visible_words(doc.load_page(page_number - 1))
    except Exception as exc:
        raise RenderError(f"cannot read text of page {page_number}: {_short(exc)}") from None


GROUP_CHARS = 12_288  # characters of text layer that pages read in one request may have together


def page_groups(path: Path, read_pages: int) -> list[tuple[int, int]]:
    """(first page, pages) of each request for a document read by the text backend: consecutive
    pages with a text layer, up to ``read_pages`` of them and ``GROUP_CHARS`` characters together,
    so a document's header, rows and totals are read in one context; a page without a text layer
    (a scan: OCR) is read alone, as is every page of a file that is not a PDF."""
    sizes = _text_sizes(path) if read_pages > 1 else []
    if not sizes:
        return [(n, 1) for n in range(1, page_count(path) + 1)]
    groups: list[tuple[int, int]] = []
    chars = 0
    for number, size in enumerate(sizes, start=1):
        text = size >= MIN_TEXT_CHARS
        if groups and text and chars and groups[-1][1] < read_pages and chars + size <= GROUP_CHARS:
            groups[-1] = (groups[-1][0], groups[-1][1] + 1)
            chars += size
        else:
            groups.append((number, 1))
            chars = size if text else 0
    return groups


def _text_sizes(path: Path) -> list[int]:
    """Characters of each page's text layer (cheap: no layout); [] if not a PDF or unreadable."""
    if kind_of(path) != "pdf":
        return []
    try:
        import pymupdf as fitz

        with fitz.open(path) as doc:
            return [len(page.get_text("text")) for page in doc]
    except Exception:
        return []


def guard_scale(width: float, height: float, max_pixels: int) -> float:
    """Factor (<= 1) that brings width x height within max_pixels."""
    area = width * height
    return 1.0 if area <= max_pixels else math.sqrt(max_pixels / area)


def _render_pdf_page(path: Path, page_number: int, dpi: int, max_pixels: int) -> RenderedPage:
    import pymupdf as fitz

    with fitz.open(path) as doc:
        page = doc.load_page(page_number - 1)
        zoom = dpi / 72.0
        zoom *= guard_scale(page.rect.width * zoom, page.rect.height * zoom, max_pixels)
        pix = page.get_pixmap(matrix=fitz.Matrix(zoom, zoom), alpha=False)
        words, hidden = visible_words(page)
        return RenderedPage(png=pix.tobytes("png"), width=pix.width, height=pix.height, text=layout_text(words),
                            words=tuple(words), scale=zoom, hidden_chars=hidden)


def _render_image_page(path: Path, page_number: int, max_pixels: int) -> RenderedPage:
    from PIL import Image

    with Image.open(path) as im:
        im.seek(page_number - 1)
        frame = im.convert("RGB")
    scale = guard_scale(frame.width, frame.height, max_pixels)
    if scale < 1.0:
        frame = frame.resize((max(1, int(frame.width * scale)), max(1, int(frame.height * scale))))
    buf = io.BytesIO()
    frame.save(buf, format="PNG")
    return RenderedPage(png=buf.getvalue(), width=frame.width, height=frame.height, text="", scale=scale)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
