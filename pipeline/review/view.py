"""An output root as the review app reads it: documents, their pages, the reviews so far.

Tables are read again when their files change (a night's run committing parts while people
review), never per field; the schema is the one the output's last run recorded, so the form
types every field as the run did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import InputError, SchemaError
from pipeline.review import corrections
from pipeline.review.fields import generic, record_of
from pipeline.schema.compiled import load_schema
from pipeline.sink.dataset import manifests, read_table, table_files

_TAG = re.compile(r"^p\d+:")


@dataclass
class Document:
    row: dict[str, Any]
    pages: list[dict[str, Any]]
    doubtful: set[str] = field(default_factory=set)  # paths the machine doubts (disputed, printed nowhere)
    alternatives: dict[str, list[str]] = field(default_factory=dict)  # path -> what other samples read
    rules: list[str] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)  # its corrections so far, oldest first


class OutputView:
    def __init__(self, root: Path, schema_path: str | None = None) -> None:
        self.root = root
        if not (root / "documents").is_dir():
            raise InputError(f"{root} holds no documents table; run 'extract run ... --output {root}' first")
        recorded = (manifests(root)[-1:] or [{}])[0].get("schema", {}).get("path")
        self.note: str | None = None  # why fields are typed by their values, to be shown
        self.compiled = load_schema(schema_path) if schema_path else None
        if self.compiled is None and recorded:
            try:
                self.compiled = load_schema(recorded)
            except SchemaError as exc:
                self.note = f"the run's schema cannot be read ({exc.message}); pass --schema"
        elif self.compiled is None:
            self.note = "no run manifest names a schema; pass --schema"
        self.schema: dict[str, Any] | None = self.compiled.raw if self.compiled else None
        self.record_names = list((self.schema or {}).get("properties") or [])
        self._stamp: tuple[Any, ...] = ()
        self._documents: list[dict[str, Any]] = []
        self._pages: dict[str, list[dict[str, Any]]] = {}

    def _fresh(self) -> None:
        files = [*table_files(self.root, "documents"), *table_files(self.root, "pages")]
        stamp = tuple((str(p), p.stat().st_mtime_ns) for p in files if p.exists())
        if stamp == self._stamp:
            return
        self._documents = read_table(self.root, "documents").to_pylist()
        if not self.record_names and self._documents:  # no schema recorded: the record columns by position
            provenance = list(self._documents[0]).index("run_id")
            self.record_names = list(self._documents[0])[:provenance]
        pages: dict[str, list[dict[str, Any]]] = {}
        if table_files(self.root, "pages"):
            for row in read_table(self.root, "pages").to_pylist():
                pages.setdefault(row.get("source_sha256") or "", []).append(row)
        self._pages = {k: sorted(v, key=lambda r: r.get("page_number") or 0) for k, v in pages.items()}
        self._stamp = stamp

    def documents(self) -> list[dict[str, Any]]:
        self._fresh()
        return self._documents

    def reviewed(self) -> set[str]:
        return set(corrections.reviews(self.root))

    def document(self, key: str) -> Document | None:
        """The live row of the document with this content hash, with what the review form needs."""
        self._fresh()
        row = next((d for d in self._documents if d.get("source_sha256") == key), None)
        if row is None:
            return None
        pages = [p for p in self._pages.get(key, []) if p.get("run_id") == row.get("run_id")] or \
            self._pages.get(key, [])
        doc = Document(row, pages, rules=list(row.get("rule_failures") or []),
                       reviews=corrections.reviews(self.root).get(key, []))
        doc.doubtful = {_TAG.sub("", p) for p in [*(row.get("disputed_fields") or []),
                                                   *(row.get("ungrounded_fields") or [])]}
        whole = len([p for p in pages if p.get("read_with") is None]) <= 1  # one record for the whole document
        for page in pages:
            for path, values in as_dict(page.get("field_alternatives")).items():
                if whole or generic(path) == path:
                    doc.alternatives.setdefault(path, list(values or []))
        return doc


def shown_record(view: OutputView, doc: Document) -> dict[str, Any]:
    """The record a reviewer sees and corrects: the machine's, with the reviews so far applied."""
    return corrections.corrected(record_of(doc.row, view.record_names), doc.reviews)[0]


def as_dict(value: Any) -> dict[str, Any]:
    """A map column's value as a dict (pyarrow gives a map back as a list of pairs)."""
    if isinstance(value, dict):
        return value
    return {k: v for k, v in value} if isinstance(value, list) else {}
