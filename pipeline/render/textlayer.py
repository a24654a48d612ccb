"""A page's text in reading order, keeping the layout of columns and table rows.

A text model only sees characters, so the geometry must survive as whitespace: words on the
same visual line stay on one line, and a wide horizontal gap (between columns, or table
cells) becomes several spaces, like ``pdftotext -layout``.  Plain ``get_text`` instead emits
block by block, which splits table rows and glues headers to neighbouring blocks.
Pages with no usable text layer (scans, photos) are read by OCR (rapidocr) into the same form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# A word: (x0, y0, x1, y1, text)
Word = tuple[float, float, float, float, str]

MIN_TEXT_CHARS = 20  # fewer printable characters than this: treat the page as having no text layer


def layout_text(words: Sequence[Word], char_width: float | None = None) -> str:
    """Arrange words into lines (by vertical overlap) and columns (by x position)."""
    if not words:
        return ""
    items = sorted(words, key=lambda w: ((w[1] + w[3]) / 2, w[0]))
    if char_width is None:
        widths = [(w[2] - w[0]) / max(1, len(w[4])) for w in items if w[4].strip()]
        char_width = sorted(widths)[len(widths) // 2] if widths else 5.0
    char_width = max(char_width, 1.0)
    lines = lines_of(items)
    x_min = min(w[0] for w in items)
    out = []
    for line in lines:
        text = ""
        prev: Word | None = None
        for w in line:
            col = int(round((w[0] - x_min) / char_width))
            if prev is None:
                text = " " * max(0, col)
            else:
                # A gap under two characters of the larger font is a plain word space.
                own = max(_char_width(prev), _char_width(w))
                gap = col - len(text)
                text += " " if w[0] - prev[2] < 2 * own or gap <= 1 else " " * gap
            text += w[4]
            prev = w
        out.append(text.rstrip())
    return "\n".join(out)


def lines_of(words: Sequence[Word]) -> list[list[Word]]:
    """Words grouped into visual lines (a word joins a line its middle falls within), left to right."""
    lines: list[list[Word]] = []
    for w in sorted(words, key=lambda w: ((w[1] + w[3]) / 2, w[0])):
        mid = (w[1] + w[3]) / 2
        if lines and min(x[1] for x in lines[-1]) <= mid <= max(x[3] for x in lines[-1]):
            lines[-1].append(w)
        else:
            lines.append([w])
    return [sorted(line, key=lambda w: w[0]) for line in lines]


def text_run(words: Sequence[Word], gap: float | None = None) -> list[Word]:
    """The first words of ``words`` (in reading order) that are one text, not the next column's:
    each starts within 2.5 line heights of the last (or within ``gap`` points)."""
    run: list[Word] = []
    for word in words:
        if run and word[0] - run[-1][2] >= (gap if gap is not None else 2.5 * (run[-1][3] - run[-1][1])):
            break
        run.append(word)
    return run


def _char_width(w: Word) -> float:
    return (w[2] - w[0]) / max(1, len(w[4]))


def pdf_page_words(page: Any) -> list[Word]:
    return [(w[0], w[1], w[2], w[3], w[4]) for w in page.get_text("words", sort=False)]


def has_usable_text(text: str) -> bool:
    return sum(ch.isalnum() for ch in text) >= MIN_TEXT_CHARS


class OcrEngine:
    """rapidocr (ONNX models inside its wheel), created once per worker: loading costs ~1 s.

    ``threads``: onnxruntime's threads, the worker's ``--threads`` (0: onnxruntime's default, every
    core).  Its threads spin while they wait, as llama.cpp's do: left at every core, a worker reading
    a scan competes for the core of the worker beside it (workers x threads must not exceed the
    cores, OCR included; measured on 6 receipts the gain was within a run's noise, 1.03x).
    ``line_orientation``: RapidOCR's classifier of upside-down text lines (``--ocr-line-orientation``)."""

    def __init__(self, threads: int = 0, line_orientation: bool = True) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError("OCR needs rapidocr: pip install 'extract[ocr]'") from exc
        params: dict[str, Any] = {"Global.log_level": "warning",  # RapidOCR sets its logger's level from this
                                  "Global.use_cls": line_orientation}
        if threads > 0:
            params |= {"EngineConfig.onnxruntime.intra_op_num_threads": threads,
                       "EngineConfig.onnxruntime.inter_op_num_threads": 1}
        self._engine = RapidOCR(params=params)

    def words(self, png: bytes) -> list[Word]:
        result = self._engine(png)
        boxes = getattr(result, "boxes", None)
        texts = getattr(result, "txts", None)
        if boxes is None or texts is None:
            return []
        words: list[Word] = []
        for box, text in zip(boxes, texts, strict=False):
            xs = [float(p[0]) for p in box]
            ys = [float(p[1]) for p in box]
            words.append((min(xs), min(ys), max(xs), max(ys), str(text)))
        return words
