"""Finding input documents.

Inputs are files and folders; folders are walked recursively.  The order is sorted and so
deterministic, which makes runs reproducible and ``--limit`` meaningful.  Each document is
identified by the sha256 of its bytes, not its name, so a renamed file is the same document.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError

PDF_SUFFIXES = frozenset({".pdf"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
XML_SUFFIXES = frozenset({".xml"})  # XRechnung / Peppol e-invoices (pipeline.einvoice)
SUPPORTED_SUFFIXES = PDF_SUFFIXES | IMAGE_SUFFIXES | XML_SUFFIXES


@dataclass(frozen=True)
class SourceFile:
    path: Path
    sha256: str
    kind: str  # "pdf", "image" or "xml"
    error: str | None = None  # set when the file exists but cannot be read


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def kind_of(path: Path) -> str:
    suffix = path.suffix.lower()
    return "pdf" if suffix in PDF_SUFFIXES else "xml" if suffix in XML_SUFFIXES else "image"


def discover(inputs: list[Path] | tuple[Path, ...]) -> list[SourceFile]:
    """All supported files under ``inputs``, sorted, each once, with their hashes.

    A named file of an unsupported type is an error (the user asked for it); unsupported
    files inside folders are skipped, as folders of invoices hold other things too.
    """
    found: dict[Path, None] = {}
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise InputError(f"input not found: {path}")
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.suffix.lower() in SUPPORTED_SUFFIXES and not child.name.startswith("."):
                    found.setdefault(child.resolve(), None)
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            found.setdefault(path.resolve(), None)
        else:
            raise InputError(
                f"unsupported input type: {path} (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})")
    if not found:
        names = ", ".join(str(p) for p in inputs)
        raise InputError(f"no PDF, image or e-invoice XML files found in: {names}")
    files = []
    for p in sorted(found):
        try:
            files.append(SourceFile(path=p, sha256=file_sha256(p), kind=kind_of(p)))
        except OSError as exc:
            files.append(SourceFile(path=p, sha256="", kind=kind_of(p),
                                    error=f"unreadable: {exc.strerror or exc}"))
    return files
