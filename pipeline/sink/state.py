"""The state store of an output root: what is done, what is half-written, who is running.

A nightly job must never lose a page, never write one twice and never redo finished work,
even when the driver is killed with ``kill -9`` at any moment.  The order of a commit makes
that hold:

1. a part is registered as ``pending`` (SQLite, committed);
2. its Parquet files are written under temporary names, fsynced and renamed into place;
3. one SQLite transaction marks its documents done and the part ``committed``.

A crash before 3 leaves a pending part: the next run deletes its files ("written but not
marked" is detected and repaired, so no duplicate rows) and redoes its documents.  "Marked
but not written" cannot happen, as marking comes after the rename.  A document redone with
``--force`` (or a new model) supersedes its old rows: the old part is queued for a rewrite
without them in the same transaction, and the rewrite is idempotent, so a crash part-way is
finished by the next run.

The lock is an ``flock`` on a file in the state folder: the kernel releases it when the
process dies, so a killed run never blocks the next one (``flock`` is unreliable on some
network file systems: keep the output root on a local disk or one with working locks).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from pipeline.errors import OutputError

STATE_DIR = "_state"
RUNS_DIR = "_runs"
TABLES = ("documents", "pages", "errors")  # written by runs
REVIEW_TABLES = ("corrections",)  # written by the review app (pipeline.review), under its own lock

_DDL = """
create table if not exists meta (key text primary key, value text not null);
create table if not exists documents (
    source_key text primary key,   -- source sha256 (or 'unreadable:<path>')
    work_key text not null,        -- hash of everything that changes the result
    status text not null,          -- ok / partial / error
    part_id text not null,
    run_id text not null,
    source_path text not null,
    page_count integer,
    updated_at text not null
);
create table if not exists parts (
    part_id text primary key,
    run_id text not null,
    status text not null,          -- pending / committed
    files text not null,           -- JSON list of paths relative to the output root
    created_at text not null
);
create table if not exists rewrites (part_id text primary key);
"""


def source_key(row: dict[str, Any]) -> str:
    """A document's identity: its content hash; a file that cannot be read, by its path."""
    return row.get("source_sha256") or f"unreadable:{row['source_path']}"


@dataclass(frozen=True)
class Done:
    work_key: str
    status: str
    part_id: str


class StateStore:
    """SQLite in ``OUT/_state/state.db``; one writer (the driver holding the lock)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        folder = root / STATE_DIR
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(folder / "state.db", isolation_level=None, timeout=30)
        except (OSError, sqlite3.Error) as exc:
            raise OutputError(f"cannot open the state store in {folder}: {exc}") from None
        self.db.execute("pragma journal_mode=wal")
        self.db.execute("pragma synchronous=full")
        self.db.executescript(_DDL)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("begin immediate")
        try:
            yield self.db
        except BaseException:
            self.db.execute("rollback")
            raise
        self.db.execute("commit")

    # -- what an output root holds ------------------------------------------------------------

    def check_schema(self, record_shape: str, schema_path: str, existing_shape: Callable[[], str | None]) -> None:
        """One output root holds one record shape: mixed Parquet schemas break every query.

        The shape is the record columns' names and Arrow types, so a schema that changes only
        descriptions or annotations (``x-einvoice``, ``x-rules``) writes into the same root (its
        documents are redone: the settings key holds the schema's own hash).  A root from before
        shapes were recorded is checked against the columns of its committed parts.
        """
        row = self.db.execute("select value from meta where key = 'record_shape'").fetchone()
        count = self.db.execute("select count(*) from documents").fetchone()[0]
        stored = row[0] if row else (existing_shape() if count else None)
        if count and stored is not None and stored != record_shape:
            raise OutputError(
                f"output {self.root} holds {count} documents extracted with another schema (other record "
                f"columns); use a new --output for {schema_path}")
        with self.transaction() as tx:
            tx.execute("insert or replace into meta values ('record_shape', ?)", (record_shape,))

    def part_files(self, table: str) -> list[str]:
        """Files of committed parts holding ``table`` (relative to the root), newest part first."""
        rows = self.db.execute("select files from parts where status = 'committed' order by created_at desc")
        return [f for (files,) in rows for f in json.loads(files) if f.startswith(f"{table}/")]

    def done(self) -> dict[str, Done]:
        rows = self.db.execute("select source_key, work_key, status, part_id from documents")
        return {r[0]: Done(r[1], r[2], r[3]) for r in rows}

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("select status, count(*) from documents group by status")
        return {status: n for status, n in rows}

    # -- the commit protocol ----------------------------------------------------------------

    def register_part(self, part_id: str, run_id: str, files: list[str]) -> None:
        with self.transaction() as tx:
            tx.execute("insert into parts values (?, ?, 'pending', ?, ?)",
                       (part_id, run_id, json.dumps(files), _now()))

    def commit_part(self, part_id: str, run_id: str, documents: Iterable[dict[str, Any]]) -> list[str]:
        """Mark documents done and the part committed, atomically; returns parts to rewrite."""
        with self.transaction() as tx:
            stale: set[str] = set()
            for doc in documents:
                key = source_key(doc)
                old = tx.execute("select part_id from documents where source_key = ?", (key,)).fetchone()
                if old and old[0] != part_id:
                    stale.add(old[0])
                tx.execute("insert or replace into documents values (?, ?, ?, ?, ?, ?, ?, ?)",
                           (key, doc["work_key"], doc["status"], part_id, run_id, doc["source_path"],
                            doc.get("page_count"), _now()))
            tx.execute("update parts set status = 'committed' where part_id = ?", (part_id,))
            for old_part in stale:
                tx.execute("insert or ignore into rewrites values (?)", (old_part,))
        return sorted(stale)

    def replace_parts(self, old: list[str], part_id: str) -> None:
        """Commit ``part_id`` and forget ``old`` in one transaction (compaction: the rows move, never twice)."""
        with self.transaction() as tx:
            tx.execute("update parts set status = 'committed' where part_id = ?", (part_id,))
            tx.executemany("delete from parts where part_id = ?", [(p,) for p in old])

    def committed_parts(self, table: str) -> list[tuple[str, list[str]]]:
        rows = self.db.execute("select part_id, files from parts where status = 'committed' order by created_at")
        parts = [(r[0], json.loads(r[1])) for r in rows]
        return [(p, files) for p, files in parts if files and files[0].split("/", 1)[0] == table]

    def pending_parts(self, tables: tuple[str, ...] = TABLES) -> list[tuple[str, list[str]]]:
        """Parts registered but never committed, of ``tables`` only: a run repairs its own parts and
        leaves a review's (which may be half-way through a commit while the run starts) to the review."""
        rows = self.db.execute("select part_id, files from parts where status = 'pending'")
        parts = [(r[0], json.loads(r[1])) for r in rows]
        return [(p, files) for p, files in parts if not files or files[0].split("/", 1)[0] in tables]

    def drop_part(self, part_id: str) -> None:
        with self.transaction() as tx:
            tx.execute("delete from parts where part_id = ?", (part_id,))

    def rewrites(self) -> list[tuple[str, list[str]]]:
        rows = self.db.execute("select p.part_id, p.files from rewrites r join parts p using (part_id)")
        return [(r[0], json.loads(r[1])) for r in rows]

    def current_keys(self, part_id: str) -> set[str]:
        """Documents whose live rows are in this part (the others were superseded)."""
        rows = self.db.execute("select source_key from documents where part_id = ?", (part_id,))
        return {r[0] for r in rows}

    def finish_rewrite(self, part_id: str, files: list[str]) -> None:
        with self.transaction() as tx:
            tx.execute("delete from rewrites where part_id = ?", (part_id,))
            if files:
                tx.execute("update parts set files = ? where part_id = ?", (json.dumps(files), part_id))
            else:
                tx.execute("delete from parts where part_id = ?", (part_id,))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class RunLock:
    """Exclusive lock on an output root, released by the kernel if the holder dies."""

    def __init__(self, root: Path) -> None:
        self.path = root / STATE_DIR / "lock"
        self._fh: IO[str] | None = None
        self.previous: dict[str, Any] | None = None  # holder of a lock left by a killed run

    def acquire(self, run_id: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(fh)
            fh.close()
            who = (f"run {holder.get('run_id')} (pid {holder.get('pid')} on {holder.get('host')}, "
                   f"since {holder.get('since')})" if holder else "another run")
            raise OutputError(f"{who} is already writing to {self.path.parent.parent}; "
                              "refusing to run twice at once") from None
        self.previous = read_holder(fh) or None  # left non-empty only by a run that was killed
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                             "since": _now()}))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.flush()
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def read_holder(fh: IO[str]) -> dict[str, Any]:
    fh.seek(0)
    try:
        value = json.loads(fh.read() or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
