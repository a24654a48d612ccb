"""A document's page as a picture for the reviewer, from the file the run recorded, and only that.

The review app never takes a path from a request: a page is asked for by the document's
content hash and a page number, the path comes from the ``documents`` table, and the file is
served only while its content still has that hash (a file replaced since the run shows a
reason instead of someone else's page).  Boxes are drawn in page units (PDF points, image
pixels: ``field_sources``' units) over a picture of any resolution.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pipeline.render.pages import RenderError, page_count, render_page
from pipeline.sources.discover import kind_of

DPI = 110
MAX_PIXELS = 6_000_000


class PictureError(Exception):
    """Why a page cannot be shown (one line for the reviewer)."""


@dataclass(frozen=True)
class Picture:
    png: bytes
    width: float  # page units (points or image pixels): the boxes' coordinate space
    height: float


def check_source(path: str, sha256: str) -> Path:
    """The recorded source, if it is still the file the run read."""
    source = Path(path)
    try:
        stat = source.stat()
    except OSError:
        raise PictureError(f"the source file is no longer at {path}") from None
    if _sha256(str(source), stat.st_mtime_ns, stat.st_size) != sha256:
        raise PictureError(f"{path} has changed since the run read it")
    return source


@lru_cache(maxsize=256)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def page_sizes(path: str, sha256: str) -> list[tuple[float, float]]:
    """Each page's size in page units (the boxes' space), without rendering a page."""
    source = check_source(path, sha256)
    try:
        if kind_of(source) == "pdf":
            import pymupdf as fitz

            with fitz.open(source) as doc:
                return [(page.rect.width, page.rect.height) for page in doc]
        from PIL import Image

        with Image.open(source) as im:
            return [(float(im.width), float(im.height))] * page_count(source)
    except RenderError as exc:
        raise PictureError(str(exc)) from None
    except Exception as exc:  # PyMuPDF and Pillow raise many types for a damaged file
        raise PictureError(f"cannot open {source.name}: {' '.join(str(exc).split())[:200]}") from None


@lru_cache(maxsize=32)
def _render(path: str, mtime_ns: int, page: int) -> Picture:
    rendered = render_page(Path(path), page, DPI, MAX_PIXELS)
    return Picture(rendered.png, rendered.width / rendered.scale, rendered.height / rendered.scale)


def picture(path: str, sha256: str, page: int) -> Picture:
    source = check_source(path, sha256)
    try:
        return _render(str(source), os.stat(source).st_mtime_ns, page)
    except RenderError as exc:
        raise PictureError(str(exc)) from None
