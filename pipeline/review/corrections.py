"""The ``corrections`` table: what a person confirmed or changed, append-only, exactly once.

``documents`` stays the machine's output; a person's word is kept beside it, one row per
changed field plus one ``approve`` row per review (``field_path`` null), keyed by the
document's content hash.  Rows are committed like the run's tables (``pipeline.sink.state``):
the part is registered as pending, its file written under a temporary name and renamed, then
marked committed in one transaction; a pending part left by a killed review is removed by the
next review write, never by a run (a run may start while a review is half-way through a
commit).  A review carries the id its form was rendered with, and a review id already in the
table is not written again, so a resubmitted form (a double click, a retry after a lost
answer) cannot write a correction twice.  Writers serialise on their own lock
(``_state/review.lock``), not on the run's lock, so people can review while a night's run writes.
Readers take the committed parts from the state store, not from the folder; every
``COMPACT_AT`` reviews the parts are compacted into one (``compact``), so a year of reviews is
not a year of small files.
"""

from __future__ import annotations

import fcntl
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.review.fields import drop_empty_rows, record_of, set_path
from pipeline.sink.parquet import rows_to_table, write_parquet_atomic
from pipeline.sink.state import REVIEW_TABLES, STATE_DIR, StateStore

TABLE = REVIEW_TABLES[0]
SCHEMA = pa.schema([
    pa.field("review_id", pa.string(), nullable=False),  # one submitted review: its rows land together or not at all
    pa.field("source_sha256", pa.string(), nullable=False),
    pa.field("source_path", pa.string(), nullable=False),
    pa.field("run_id", pa.string()),  # the run whose record the person saw
    pa.field("action", pa.string(), nullable=False),  # approve (the document as corrected) or correct (one field)
    pa.field("field_path", pa.string()),  # null on an approve row
    pa.field("old_value", pa.string()),  # JSON
    pa.field("new_value", pa.string()),  # JSON
    pa.field("reviewer", pa.string(), nullable=False),
    pa.field("reviewed_at", pa.timestamp("us", tz="UTC"), nullable=False),
])


def new_review_id() -> str:
    return uuid.uuid4().hex


COMPACT_AT = 64  # committed parts; one review is one small part, and a year of them would be many files


@contextmanager
def review_lock(root: Path) -> Iterator[StateStore]:
    """The review writers' lock and the root's state store (released by the kernel if we die), with
    what a killed review left behind cleared away: a pending part, files a compaction let go of."""
    path = root / STATE_DIR / "review.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # reviews are short: wait for the other writer
        store = StateStore(root)
        try:
            for part_id, files in store.pending_parts(REVIEW_TABLES):
                for rel in files:
                    (root / rel).unlink(missing_ok=True)
                store.drop_part(part_id)
            live = {f for _, files in store.committed_parts(TABLE) for f in files}
            for stale in (root / TABLE).glob("run_date=*/*.parquet"):
                if stale.relative_to(root).as_posix() not in live:
                    stale.unlink()
            yield store
        finally:
            store.close()
            fcntl.flock(fh, fcntl.LOCK_UN)


def append(root: Path, rows: list[dict[str, Any]]) -> bool:
    """Commit one review's rows (all with the same ``review_id``); False if it was committed before."""
    if not rows:
        return False
    review_id = rows[0]["review_id"]
    if any(r["review_id"] != review_id for r in rows):
        raise ValueError("one review at a time")
    with review_lock(root) as store:
        if review_id in _review_ids(root, store):
            return False
        now = datetime.now(timezone.utc)
        table = rows_to_table([{**r, "reviewed_at": r.get("reviewed_at") or now} for r in rows], SCHEMA)
        part_id = f"review-{now:%Y%m%dT%H%M%S}-{review_id[:12]}"
        rel = f"{TABLE}/run_date={now.date().isoformat()}/part-{part_id}.parquet"
        _commit(root, store, part_id, rel, table)
        if len(store.committed_parts(TABLE)) >= COMPACT_AT:
            compact(root, store)
    return True


def _commit(root: Path, store: StateStore, part_id: str, rel: str, table: pa.Table,
            replacing: list[str] | None = None) -> None:
    store.register_part(part_id, part_id, [rel])
    write_parquet_atomic(root / rel, table)
    if replacing is None:
        store.commit_part(part_id, part_id, [])
    else:
        store.replace_parts(replacing, part_id)


def compact(root: Path, store: StateStore) -> None:
    """Every committed correction in one part: the new part is committed and the old ones forgotten
    in one transaction, then their files removed (a crash before that leaves files nobody reads,
    cleared by the next review write)."""
    parts = store.committed_parts(TABLE)
    table = read(root, store)
    now = datetime.now(timezone.utc)
    part_id = f"review-{now:%Y%m%dT%H%M%S}-compacted-{uuid.uuid4().hex[:8]}"
    _commit(root, store, part_id, f"{TABLE}/run_date={now.date().isoformat()}/part-{part_id}.parquet",
            table, replacing=[p for p, _ in parts])
    for _, files in parts:
        for rel in files:
            (root / rel).unlink(missing_ok=True)


def _review_ids(root: Path, store: StateStore) -> set[str]:
    table = read(root, store)
    return set(table.column("review_id").to_pylist()) if table.num_rows else set()


def read(root: Path, store: StateStore | None = None) -> pa.Table:
    """Every committed correction (an empty table where nobody has reviewed yet), from the parts the
    state store lists as committed: never a half-written or compacted-away file."""
    import pyarrow.parquet as pq

    if not (root / STATE_DIR / "state.db").exists():
        return SCHEMA.empty_table()
    own = store is None
    store = store or StateStore(root)
    try:
        for attempt in range(3):
            files = [f for _, part in store.committed_parts(TABLE) for f in part]
            try:
                tables = [pq.read_table(root / f, schema=SCHEMA) for f in files]
                break
            except FileNotFoundError:  # compacted away between listing and reading: list again
                if attempt == 2:
                    raise
    finally:
        if own:
            store.close()
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


def reviews(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Corrections by document hash, oldest first."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(read(root).to_pylist(), key=lambda r: r["reviewed_at"]):
        out.setdefault(row["source_sha256"], []).append(row)
    return out


def corrected(record: dict[str, Any], rows: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """``record`` with a person's values applied (the later one wins), and the paths they changed."""
    changed: dict[str, Any] = {}
    for row in rows:
        if row["action"] == "correct" and row["field_path"]:
            changed[row["field_path"]] = json.loads(row["new_value"]) if row["new_value"] is not None else None
    out = dict(record)
    for path, value in changed.items():
        out = set_path(out, path, value)
    return drop_empty_rows(out), sorted(changed)


def reviewed_record(doc: dict[str, Any], record_names: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A documents row with its review applied and the review's columns."""
    record, paths = corrected(record_of(doc, record_names), rows)
    people = [r for r in rows if r["action"] == "approve"]
    last = rows[-1] if rows else None
    return {**doc, **record, "reviewed": bool(people), "reviewed_by": last["reviewer"] if last else None,
            "reviewed_at": last["reviewed_at"] if last else None, "corrected_fields": paths}


REVIEW_COLUMNS = [
    pa.field("reviewed", pa.bool_()),
    pa.field("reviewed_by", pa.string()),
    pa.field("reviewed_at", pa.timestamp("us", tz="UTC")),
    pa.field("corrected_fields", pa.list_(pa.string())),
]


def reviewed_table(root: Path, record_names: list[str]) -> pa.Table:
    """``documents`` as a person confirmed them: every document, the reviewed ones with their
    corrections applied (``reviewed``, ``reviewed_by``, ``reviewed_at``, ``corrected_fields``)."""
    from pipeline.sink.dataset import read_table

    documents = read_table(root, "documents")
    by_doc = reviews(root)
    rows = [reviewed_record(d, record_names, by_doc.get(d.get("source_sha256") or "", []))
            for d in documents.select(["source_sha256", *record_names]).to_pylist()]
    changed = pa.schema([documents.schema.field(n) for n in record_names] + REVIEW_COLUMNS)
    values = rows_to_table(rows, changed)
    for name in record_names:  # the record columns as corrected; provenance as the machine wrote it
        documents = documents.set_column(documents.schema.get_field_index(name), name, values.column(name))
    for column in REVIEW_COLUMNS:
        documents = documents.append_column(column, values.column(column.name))
    return documents


def truth(root: Path, record_names: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Ground truth from the reviews: each approved document's record as a person confirmed it,
    by document hash (with its source path), for ``extract eval --truth corrections``."""
    from pipeline.sink.dataset import read_table

    by_doc = reviews(root)
    out = {}
    for doc in read_table(root, "documents").to_pylist():
        rows = by_doc.get(doc.get("source_sha256") or "")
        if rows and any(r["action"] == "approve" for r in rows):
            record, _ = corrected(record_of(doc, record_names), rows)
            out[doc["source_sha256"]] = (doc["source_path"], record)
    return out
