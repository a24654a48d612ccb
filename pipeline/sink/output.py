"""An output root opened for a run: write probe, lock, state store, repair of a killed run, part writer.

The order is the commit protocol's (``docs/architecture.md``): nothing is read or written
before the lock is held, and what a killed run left half-done is undone before new work.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from pipeline.config.settings import RunConfig
from pipeline.schema.compiled import CompiledSchema
from pipeline.sink.arrow import record_fields
from pipeline.sink.parquet import (
    PartWriter,
    documents_schema,
    ensure_writable,
    pages_schema,
    repair,
    write_json_atomic,
)
from pipeline.sink.state import RUNS_DIR, RunLock, StateStore


class OutputRoot:
    """``with OutputRoot(cfg, schema) as out:`` holds the lock and the store for the run."""

    def __init__(self, cfg: RunConfig, schema: CompiledSchema) -> None:
        self.cfg = cfg
        self.schema = schema
        self.root: Path = cfg.output
        self.repaired: dict[str, int] = {}

    def __enter__(self) -> OutputRoot:
        ensure_writable(self.root)
        self.lock = RunLock(self.root)
        self.lock.acquire(self.cfg.run_id)
        self.store = StateStore(self.root)
        try:
            self.store.check_schema(record_shape(self.schema.raw), self.schema.path, self._existing_shape)
            self.repaired = {**repair(self.root, self.store), "lock_taken_over": int(self.lock.previous is not None)}
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _existing_shape(self) -> str | None:
        """The record shape of the root's newest committed documents part (a root from before shapes)."""
        import pyarrow.parquet as pq

        for rel in self.store.part_files("documents"):
            path = self.root / rel
            if path.is_file():
                columns = {f.name: f for f in pq.read_schema(path)}
                names = list(self.schema.raw["properties"])
                if not all(n in columns for n in names):
                    return "missing record columns"
                return json.dumps([f"{n}: {_type_text(columns[n].type)}" for n in names])
        return None

    def writer(self) -> PartWriter:
        raw = self.schema.raw
        return PartWriter(self.root, self.cfg.run_id, datetime.now().date().isoformat(),
                          {"documents": documents_schema(raw), "pages": pages_schema(raw)},
                          self.store, self.cfg.commit_documents, self.cfg.commit_seconds)

    def manifest_path(self) -> Path:
        return self.root / RUNS_DIR / f"{self.cfg.run_id}.json"

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        manifest["state"] = {**manifest.get("state", {}), "documents_done": self.store.counts(),
                             "previous_lock_holder": self.lock.previous}
        write_json_atomic(self.manifest_path(), manifest)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.store.close()
        self.lock.release()


def record_shape(schema: dict[str, Any]) -> str:
    """The record columns an output root holds: names and Arrow types, in order."""
    return json.dumps([f"{field.name}: {_type_text(field.type)}" for field in record_fields(schema)])


def _type_text(dtype: Any) -> str:
    """An Arrow type as text, without the names Parquet gives list items (``item`` / ``element``)."""
    import pyarrow as pa

    if pa.types.is_list(dtype):
        return f"list<{_type_text(dtype.value_type)}>"
    if pa.types.is_struct(dtype):
        return "struct<" + ", ".join(f"{f.name}: {_type_text(f.type)}" for f in dtype) + ">"
    if pa.types.is_map(dtype):
        return f"map<{_type_text(dtype.key_type)}, {_type_text(dtype.item_type)}>"
    return str(dtype)
