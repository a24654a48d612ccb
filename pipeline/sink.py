"""Parquet output: typed record columns + provenance, written atomically, plus a manifest.

Two tables: ``documents.parquet`` (one merged record per document: what analysts query) and
``pages.parquet`` (every page's own extraction, status and latency: the audit trail).

Rows stream into a ``ParquetWriter`` in row groups, so memory does not grow with the number
of pages.  The file is written under a temporary name and renamed when complete: a reader
(or a crashed run) never sees half a file.  The run manifest (config, counts, versions,
timings) is written the same way beside it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.arrow import record_fields, to_arrow_value
from pipeline.errors import OutputError, SchemaError

DOCUMENTS_FILE = "documents.parquet"
PAGES_FILE = "pages.parquet"
MANIFEST_FILE = "manifest.json"

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

PAGE_PROVENANCE = [
    *_SOURCE,
    pa.field("page_number", pa.int32()),
    pa.field("page_count", pa.int32()),
    *_MODEL,
    pa.field("attempts", pa.int32()),
    pa.field("latency_ms", pa.float64()),
    pa.field("prompt_tokens", pa.int32()),
    pa.field("completion_tokens", pa.int32()),
    pa.field("raw_output", pa.string()),
    pa.field("text_source", pa.string()),
    *_CONFIDENCE,
    *_ADJUDICATION,
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
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


class ParquetSink:
    """Streams rows into one Parquet file (atomically put in place on close)."""

    def __init__(self, path: Path, schema: pa.Schema, row_group_size: int = 64) -> None:
        self.schema = schema
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.row_group_size = row_group_size
        self._buffer: list[dict[str, Any]] = []
        self._writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
        self.rows_written = 0

    def add(self, row: dict[str, Any]) -> None:
        self._buffer.append({f.name: to_arrow_value(row.get(f.name), f.type) for f in self.schema})
        if len(self._buffer) >= self.row_group_size:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=self.schema))
            self.rows_written += len(self._buffer)
            self._buffer = []

    def close(self) -> Path:
        self._flush()
        self._writer.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file: an interrupted run leaves no half-written output behind."""
        try:
            self._writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)
