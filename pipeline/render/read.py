"""The model's input for a page: its image, its text (text layer, or OCR for a scan), or both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.render.pages import RenderError, page_text, render_page
from pipeline.render.textlayer import OcrEngine, has_usable_text


@dataclass(frozen=True)
class PageInput:
    source_path: str
    page_number: int
    png: bytes
    text: str


class LazyOcr:
    """Loads rapidocr on the first page that needs it: most PDFs never do."""

    def __init__(self) -> None:
        self._engine: OcrEngine | None = None

    def text(self, png: bytes) -> str:
        if self._engine is None:
            self._engine = OcrEngine()
        return self._engine.text(png)


def read_page(backend: Any, task: dict[str, Any], dpi: int, max_pixels: int,
              ocr: LazyOcr) -> tuple[PageInput, str]:
    """The model's input for a page and where it came from: layer, ocr, image, or image+layer /
    image+ocr for a VLM with a dual view (image+none: the page has no text to read)."""
    path, number = Path(task["source_path"]), int(task["page_number"])
    if getattr(backend, "needs_text", False):
        text = page_text(path, number)
        if has_usable_text(text):
            return PageInput(str(path), number, b"", text), "layer"
        rendered = render_page(path, number, dpi, max_pixels)
        return PageInput(str(path), number, rendered.png, _ocr(ocr, rendered.png)), "ocr"
    rendered = render_page(path, number, dpi, max_pixels)
    if not backend.dual_view:
        return PageInput(str(path), number, rendered.png, rendered.text), "image"
    if has_usable_text(rendered.text):
        return PageInput(str(path), number, rendered.png, rendered.text), "image+layer"
    text = _ocr(ocr, rendered.png)
    if has_usable_text(text):
        return PageInput(str(path), number, rendered.png, text), "image+ocr"
    return PageInput(str(path), number, rendered.png, ""), "image+none"  # nothing for a text view to read


def _ocr(ocr: LazyOcr, png: bytes) -> str:
    try:
        return ocr.text(png)
    except Exception as exc:
        raise RenderError(f"ocr failed: {' '.join(str(exc).split())[:200]}") from None


