"""Do two runs give the same documents?  For a change that must not change behaviour.

Replay one set of recorded answers (``real_accuracy.py --answers DIR --keep OUT``) through the
code before and after the change, then compare the two outputs' documents: the record, the flag
and its reasons, the repairs and doubts.  Prints each document that differs and where; writes
``benchmarks/results/same_records.json``.

    python benchmarks/same_records.py BEFORE_OUT AFTER_OUT [--label NAME]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from _results import RESULTS, provenance, write_results

from pipeline.review.fields import as_json
from pipeline.sink.dataset import read_table
from pipeline.sink.parquet import DOCUMENT_PROVENANCE

COMPARED = ("needs_review", "review_reasons", "repairs", "doubts", "rule_failures", "status")


def documents(out: Path) -> dict[str, dict[str, Any]]:
    return {Path(d["source_path"]).name: d for d in read_table(out, "documents").to_pylist()}


def differences(before: dict[str, Any], after: dict[str, Any], names: list[str]) -> list[str]:
    """The columns where two rows of one document differ (record fields by name)."""
    return [name for name in [*names, *COMPARED] if as_json(before.get(name)) != as_json(after.get(name))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--label", default="same_records", help="the entry's name in the results file")
    args = parser.parse_args()
    old, new = documents(args.before), documents(args.after)
    columns = {f.name for f in DOCUMENT_PROVENANCE} | {"run_date"}
    names = [n for n in read_table(args.after, "documents").schema.names if n not in columns]  # the record's
    changed = {}
    for name in sorted(set(old) & set(new)):
        found = differences(old[name], new[name], names)
        if found:
            changed[name] = {col: {"before": as_json(old[name].get(col)), "after": as_json(new[name].get(col))}
                             for col in found}
    result = {**provenance(), "before": str(args.before), "after": str(args.after),
              "documents": len(set(old) & set(new)),
              "only_before": sorted(set(old) - set(new)), "only_after": sorted(set(new) - set(old)),
              "changed": changed}
    print(f"{result['documents']} documents in both; {len(changed)} differ")
    for name, cols in changed.items():
        print(f"  {name}: " + "; ".join(f"{c}: {v['before']!r} -> {v['after']!r}"[:300] for c, v in cols.items()))
    path = RESULTS / "same_records.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    previous.pop("written", None)
    write_results("same_records", {**previous, args.label: result})


if __name__ == "__main__":
    main()
