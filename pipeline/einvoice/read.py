"""Finding the e-invoice XML of an input, without trusting the file.

A Factur-X / ZUGFeRD PDF carries the XML as an embedded file; an XRechnung or Peppol invoice
is the XML itself.  Embedded files come from strangers: each is decompressed with a bound (an
attachment that inflates beyond ``MAX_XML_BYTES`` is an attachment bomb, refused), and nothing
is read but the input file itself.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_XML_BYTES = 10 * 1024 * 1024  # the largest real e-invoices with many lines are a few MB
KNOWN_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "ZUGFeRD-invoice.xml", "xrechnung.xml")
ROOT_TAGS = (b"CrossIndustryInvoice", b"CrossIndustryDocument", b"Invoice", b"CreditNote")


class EInvoiceError(Exception):
    """Why a document's e-invoice XML cannot be used (the row says it as ``einvoice_error``)."""


@dataclass(frozen=True)
class Attachment:
    name: str  # the embedded file's name, or the XML file's own name
    xml: bytes


def find_xml(path: Path) -> Attachment | None:
    """The e-invoice XML of a PDF or XML input, None when it has none; ``EInvoiceError`` when it
    has one that cannot be read safely."""
    if path.suffix.lower() == ".xml":
        size = path.stat().st_size
        if size > MAX_XML_BYTES:
            raise EInvoiceError(f"XML file of {size:,} bytes is larger than the {MAX_XML_BYTES:,} bytes allowed")
        return Attachment(path.name, path.read_bytes())
    if path.suffix.lower() != ".pdf":
        return None
    return _from_pdf(path)


def _from_pdf(path: Path) -> Attachment | None:
    import pymupdf

    try:
        doc = pymupdf.open(path)
    except Exception:  # an unreadable PDF is the renderer's to report, as an open_error
        return None
    with doc:
        streams = _embedded_streams(doc)
        ordered = sorted(streams, key=lambda item: (item[0] not in KNOWN_NAMES, item[0]))
        for name, xref in ordered:
            data = _bounded_stream(doc, xref, name)
            if name in KNOWN_NAMES or _looks_like_einvoice(data):
                return Attachment(name, data)
    return None


def _key(doc: Any, xref: int, key: str) -> tuple[str, str]:
    """A PDF object's key as (kind, value); ("null", "null") for a broken or missing object."""
    try:
        found: tuple[str, str] = doc.xref_get_key(xref, key)
        return found
    except Exception:  # a damaged cross-reference table: that object is skipped
        return "null", "null"


def _embedded_streams(doc: Any) -> list[tuple[str, int]]:
    """(file name, stream xref) of every embedded file stream.

    Streams are found by their type, not through PyMuPDF's ``embfile_get`` (which inflates a
    stream whole); names come from file specifications that are objects of their own (Factur-X
    writers make them so), or from the document's one listed name when it has one attachment.
    """
    streams, names = [], {}
    for xref in range(1, doc.xref_length()):
        kind = _key(doc, xref, "Type")
        if kind == ("name", "/EmbeddedFile"):
            streams.append(xref)
        elif kind == ("name", "/Filespec"):
            ref_kind, ref = _key(doc, xref, "EF/F")
            for key in ("UF", "F"):
                name_kind, value = _key(doc, xref, key)
                if ref_kind == "xref" and name_kind == "string" and value:
                    names[int(ref.split()[0])] = value
                    break
    try:
        listed = doc.embfile_names()
    except Exception:
        listed = []
    if len(streams) == 1 and len(listed) == 1:
        names.setdefault(streams[0], listed[0])
    return [(names.get(xref, f"attachment-{xref}"), xref) for xref in streams]


def _bounded_stream(doc: Any, xref: int, name: str) -> bytes:
    """An embedded file's bytes, inflated at most to ``MAX_XML_BYTES`` (+1 to know it is more)."""
    try:
        raw = doc.xref_stream_raw(xref)  # as stored: bounded by the file's size
    except Exception as exc:
        raise EInvoiceError(f"attachment {name} cannot be read: {' '.join(str(exc).split())[:160]}") from None
    kind, value = _key(doc, xref, "Filter")
    if kind == "null":
        data = raw
    elif value in ("/FlateDecode", "[/FlateDecode]"):
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(raw, MAX_XML_BYTES + 1)
        except zlib.error as exc:
            raise EInvoiceError(f"attachment {name} cannot be decompressed: {exc}") from None
    else:
        raise EInvoiceError(f"attachment {name} uses the filter {value}, which is not read")
    if len(data) > MAX_XML_BYTES:
        raise EInvoiceError(f"attachment {name} inflates beyond {MAX_XML_BYTES:,} bytes (an attachment bomb?)")
    return bytes(data)


def _looks_like_einvoice(data: bytes) -> bool:
    """An attachment of another name whose root element is a CII or UBL invoice."""
    head = data[:4096]
    start = head.find(b"<", head.find(b"?>") + 1 if b"?>" in head else 0)
    while start >= 0 and head[start:start + 4] in (b"<!--", b"<!DO"):
        start = head.find(b"<", head.find(b">", start) + 1)
    if start < 0:
        return False
    tag = head[start + 1:].split(None, 1)[0].split(b">", 1)[0]
    return tag.rsplit(b":", 1)[-1] in ROOT_TAGS
