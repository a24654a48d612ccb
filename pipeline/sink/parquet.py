"""Parquet output: typed record columns + provenance, in a Hive-partitioned dataset.

Three tables under the output root, each ``TABLE/run_date=YYYY-MM-DD/part-<run>-<n>.parquet``:
``documents`` (one merged record per document: what analysts query), ``pages`` (every page's
own extraction, status and latency: the audit trail) and ``errors`` (every failed page or
unreadable file with its reason).  Every part file of a table has the same Arrow schema, so
``read_parquet('OUT/documents/**/*.parquet', hive_partitioning=true)`` gives typed columns.

A part holds whole documents and is written under a temporary name and renamed: a reader
never sees half a file.  Which parts count, and the order that makes a crash harmless, is
``pipeline.sink.state``'s business; this module only writes and rewrites files.
"""

from __future__ import annotations

import json
import os
import time
import types
import typing
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import OutputError, SchemaError
from pipeline.results import FieldSource, provenance_fields
from pipeline.sink.arrow import record_fields, to_arrow_value
from pipeline.sink.state import TABLES, StateStore, source_key

_SOURCE = [
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("source_path", pa.string(), nullable=False),
    pa.field("source_sha256", pa.string(), nullable=False),
]
_MODEL = [
    pa.field("model_name", pa.string(), nullable=False),
    pa.field("model_sha256", pa.string(), nullable=False),
    pa.field("prompt_version", pa.string(), nullable=False),
    pa.field("schema_sha256", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("error", pa.string()),
]
_CONFIDENCE = [
    pa.field("samples", pa.int32()),
    pa.field("agreement", pa.float64()),
    pa.field("min_confidence", pa.float64()),
    pa.field("field_confidence", pa.map_(pa.string(), pa.float64())),
    pa.field("field_probability", pa.map_(pa.string(), pa.float64())),  # rules.confidence: p(value is right)
    pa.field("min_probability", pa.float64()),
    pa.field("disputed_fields", pa.list_(pa.string())),
    pa.field("needs_review", pa.bool_()),
]
_ADJUDICATION = [
    pa.field("adjudicated", pa.bool_()),
    pa.field("adjudicator_model", pa.string()),
    pa.field("adjudication_reason", pa.string()),
    pa.field("api_input_tokens", pa.int64()),
    pa.field("api_output_tokens", pa.int64()),
    pa.field("api_cost_usd", pa.float64()),
]
_CREATED = pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False)

def _arrow_of(hint: Any) -> pa.DataType:
    """The Arrow type of a ``PageResult`` field's Python type (``Annotated[int, "int64"]`` widens)."""
    if typing.get_origin(hint) is typing.Annotated:
        base, *meta = typing.get_args(hint)
        return pa.int64() if "int64" in meta else _arrow_of(base)
    members = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) in (
        typing.Union, types.UnionType) else [hint]
    hint = members[0]
    origin = typing.get_origin(hint)
    if origin is list:
        return pa.list_(_arrow_of(typing.get_args(hint)[0]))
    if origin is dict:
        key, value = typing.get_args(hint)
        return pa.map_(_arrow_of(key), _arrow_of(value))
    if origin is typing.Literal:
        return pa.string()
    if typing.is_typeddict(hint):  # a struct: its keys are fixed (FieldSource)
        return pa.struct([pa.field(k, _arrow_of(v)) for k, v in typing.get_type_hints(hint).items()])
    return {str: pa.string(), int: pa.int32(), float: pa.float64(), bool: pa.bool_()}[hint]


_NOT_NULL = {"source_path", "source_sha256", "status"}
PAGE_PROVENANCE = [
    *_SOURCE[:1],  # run_id
    *(pa.field(name, _arrow_of(hint), nullable=name not in _NOT_NULL) for name, hint in provenance_fields()),
    *(f for f in _MODEL if f.name not in ("status", "error")),
    pa.field("disputed_fields", pa.list_(pa.string())),
    pa.field("needs_review", pa.bool_()),
    pa.field("review_reasons", pa.list_(pa.string())),  # why needs_review is set (PageResult.review_reasons)
    _CREATED,
]

DOCUMENT_PROVENANCE = [
    *_SOURCE,
    pa.field("page_count", pa.int32()),
    pa.field("pages_ok", pa.int32()),
    pa.field("pages_error", pa.int32()),
    *_MODEL,
    pa.field("rule_failures", pa.list_(pa.string())),
    *_CONFIDENCE,
    *_ADJUDICATION,
    pa.field("latency_ms", pa.float64()),
    # the traces of the pages' fallbacks (see PageResult), page-tagged on a longer document
    pa.field("fallback_reason", pa.string()),
    pa.field("normalize_nulls", pa.list_(pa.string())),
    pa.field("dropped_rows", pa.int32()),
    pa.field("repairs", pa.list_(pa.string())),  # values the rules and the page's amounts corrected (page-tagged)
    pa.field("doubts", pa.list_(pa.string())),  # values in doubt for a reason of their own, "path: why" (page-tagged)
    pa.field("review_reasons", pa.list_(pa.string())),  # why needs_review is set: one line per reason
    # where each value of the document was printed (pipeline.ground, merge.sources), and the values printed nowhere
    pa.field("field_sources", _arrow_of(dict[str, FieldSource])),
    pa.field("ungrounded_fields", pa.list_(pa.string())),
    # e-invoices (pipeline.einvoice): xml (read from it) or verified (checked against it), why not, where not
    pa.field("einvoice", pa.string()),
    pa.field("einvoice_error", pa.string()),
    pa.field("einvoice_mismatches", pa.list_(pa.string())),
    # the screening (pipeline.screen): the document's kind, text that spoke to the machine, hidden text
    pa.field("document_kind", pa.string()),
    pa.field("injection_suspected", pa.bool_()),
    pa.field("hidden_text_chars", pa.int32()),
    _CREATED,
]


def _with_provenance(json_schema: dict[str, Any], provenance: list[pa.Field]) -> pa.Schema:
    """Record columns first (what analysts query), provenance after."""
    fields = record_fields(json_schema)
    taken = {f.name for f in provenance}
    clash = [f.name for f in fields if f.name in taken]
    if clash:
        raise SchemaError(f"schema property '{clash[0]}' collides with a provenance column; rename it")
    return pa.schema(fields + provenance)


def pages_schema(json_schema: dict[str, Any]) -> pa.Schema:
    return _with_provenance(json_schema, PAGE_PROVENANCE)


def documents_schema(json_schema: dict[str, Any]) -> pa.Schema:
    return _with_provenance(json_schema, DOCUMENT_PROVENANCE)


def ensure_writable(output: Path) -> None:
    """Fail at start-up, not after an hour of inference, if the output cannot be written."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to output folder {output}: {exc.strerror or exc}") from None


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


def write_parquet_atomic(path: Path, table: pa.Table) -> None:
    """Temp name, fsync, rename, fsync the folder: after this returns the file is durable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rows_to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([{f.name: to_arrow_value(row.get(f.name), f.type) for f in schema}
                                 for row in rows], schema=schema)


def error_rows(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The errors table: one row per failed page or unreadable file, with its reason."""
    return [{k: p.get(k) for k in ERRORS_SCHEMA.names} for p in pages if p.get("status") != "ok"]


ERRORS_SCHEMA = pa.schema([
    *_SOURCE,
    pa.field("page_number", pa.int32()),
    pa.field("page_count", pa.int32()),
    pa.field("model_name", pa.string(), nullable=False),
    pa.field("error", pa.string()),
    pa.field("attempts", pa.int32()),
    _CREATED,
])


class PartWriter:
    """Buffers finished documents and commits them as parts, by count or by age.

    Small, frequent parts bound what a crash can cost (at most one part's documents are
    redone); the age limit matters for slow models, where 32 documents may take an hour.
    """

    def __init__(self, root: Path, run_id: str, run_date: str, schemas: dict[str, pa.Schema],
                 store: StateStore, commit_documents: int, commit_seconds: float) -> None:
        self.root = root
        self.run_id = run_id
        self.run_date = run_date
        self.schemas = {**schemas, "errors": ERRORS_SCHEMA}
        self.store = store
        self.commit_documents = commit_documents
        self.commit_seconds = commit_seconds
        self._rows: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
        self._oldest: float | None = None
        self._seq = 0
        self.parts: list[str] = []

    def add_document(self, document: dict[str, Any], pages: list[dict[str, Any]]) -> None:
        self._rows["documents"].append(document)
        self._rows["pages"].extend(pages)
        self._rows["errors"].extend(error_rows(pages))
        self._oldest = self._oldest or time.monotonic()
        full = len(self._rows["documents"]) >= self.commit_documents
        if full or time.monotonic() - self._oldest >= self.commit_seconds:
            self.flush()

    def flush(self) -> None:
        if not self._rows["documents"]:
            return
        self._seq += 1
        part_id = f"{self.run_id}-{self._seq:05d}"
        files = {t: f"{t}/run_date={self.run_date}/part-{part_id}.parquet" for t in TABLES if self._rows[t]}
        tables = {t: rows_to_table(self._rows[t], self.schemas[t]) for t in files}  # fail before registering
        self.store.register_part(part_id, self.run_id, sorted(files.values()))
        for name, rel in files.items():
            write_parquet_atomic(self.root / rel, tables[name])
        stale = self.store.commit_part(part_id, self.run_id, self._rows["documents"])
        self.parts.append(part_id)
        self._rows = {t: [] for t in TABLES}
        self._oldest = None
        if stale:
            finish_rewrites(self.root, self.store)


def repair(root: Path, store: StateStore) -> dict[str, int]:
    """Undo what a killed run left half-done; safe to run any number of times."""
    dropped = 0
    for part_id, files in store.pending_parts():  # written (maybe) but never marked done
        for rel in files:
            (root / rel).unlink(missing_ok=True)
        store.drop_part(part_id)
        dropped += 1
    temps = 0
    for table in TABLES:
        for tmp in (root / table).glob("**/.part-*.tmp-*"):
            tmp.unlink(missing_ok=True)
            temps += 1
    rewritten = finish_rewrites(root, store)
    return {"parts_dropped": dropped, "temp_files_removed": temps, "parts_rewritten": rewritten}


def finish_rewrites(root: Path, store: StateStore) -> int:
    """Rewrite parts holding superseded documents with only their live rows (idempotent)."""
    done = 0
    for part_id, files in store.rewrites():
        live = store.current_keys(part_id)
        kept = []
        for rel in files:
            path = root / rel
            if not path.is_file():
                continue
            table = pq.read_table(path, partitioning=None)
            keys = [source_key(r) for r in table.select(["source_path", "source_sha256"]).to_pylist()]
            mask = pa.array([k in live for k in keys], pa.bool_())
            if all(mask.to_pylist()):
                kept.append(rel)
                continue
            filtered = table.filter(mask)
            if filtered.num_rows:
                write_parquet_atomic(path, filtered)
                kept.append(rel)
            else:
                path.unlink()
        store.finish_rewrite(part_id, kept)
        done += 1
    return done
