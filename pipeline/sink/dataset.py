"""Reading an output root back: the Hive-partitioned tables and the run manifests.

What analysts do with DuckDB (``read_parquet('OUT/documents/**/*.parquet',
hive_partitioning=true)``), ``extract show`` and ``extract eval`` do with pyarrow here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.errors import InputError
from pipeline.sink.state import RUNS_DIR


def table_files(output: Path, table: str) -> list[Path]:
    return sorted((output / table).glob("run_date=*/part-*.parquet"))


def read_table(output: Path, table: str, columns: list[str] | None = None) -> pa.Table:
    """All committed parts of one table (``run_date`` included as a column)."""
    import pyarrow.dataset as ds

    if not table_files(output, table):
        raise InputError(f"no {table} found in {output}; run 'extract run ... --output {output}' first")
    dataset = ds.dataset(output / table, format="parquet", partitioning="hive",
                         exclude_invalid_files=False, ignore_prefixes=[".", "_"])
    return dataset.to_table(columns=columns)


def manifests(output: Path, unreadable: list[str] | None = None) -> list[dict[str, Any]]:
    """Run manifests, oldest first.  One that cannot be read is left out and named, with why, in
    ``unreadable`` (callers show it: a damaged manifest is never skipped silently)."""
    out = []
    for path in sorted((output / RUNS_DIR).glob("*.json")):
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict) or "counts" not in manifest:
                raise ValueError("not a run manifest")
            out.append(manifest)
        except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
            if unreadable is not None:
                unreadable.append(f"{path.name}: {type(exc).__name__}: {' '.join(str(exc).split())[:120]}")
    return sorted(out, key=lambda m: m.get("started_at", ""))
