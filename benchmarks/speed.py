"""Pages per core-hour before and after a change, in one run on one machine, with the accuracy they buy.

Runs ``extract run`` (text backend, local only, ``--einvoice ignore`` so the model reads every page,
2 workers x 1 thread) over folders of real documents with truth JSON beside each, once with the
"before" pipeline and once with this checkout's defaults, back to back, and scores both with this
checkout's scorer.  "Before" is the old path behind a setting (``--before-args "--sampling fixed"``,
the default) or another commit (``--before-commit 984a148``: checked out with ``git worktree`` and
run from there, its own schema and code).  Reports per run: pages per core-hour, answer tokens,
prompt tokens evaluated and samples per page, header accuracy, line-item F1, flag share and
precision, per half of the dev split (``_split.py``); writes ``benchmarks/results/speed.json``.

    python benchmarks/speed.py ../shared/realdev/invoices ../shared/realdev/receipts \\
        [--before-commit 984a148] [--half score] [--limit 6]

Not a test: minutes to hours on a CPU.  Compare ratios within one run only (a shared VM moves by
5-10 % between runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import RESULTS, provenance, write_results
from _split import half
from real_accuracy import evaluate_one, halves

from pipeline.eval.score import evaluate
from pipeline.sink.dataset import read_table

ROOT = Path(__file__).resolve().parents[1]
CORES = 2  # workers x threads of every run here


def subset(folder: Path, which: str, limit: int | None, into: Path) -> Path:
    """A folder of links to the documents of one half (or all), the first ``limit`` by name."""
    docs = sorted(p for p in folder.iterdir() if p.suffix != ".json" and p.with_suffix(".json").is_file()
                  and (which == "all" or half(p) == which))[:limit]
    into.mkdir(parents=True)
    for doc in docs:
        for path in (doc, doc.with_suffix(".json")):
            (into / path.name).symlink_to(path.resolve())
    return into


def run(checkout: Path, folder: Path, out: Path, model: str, extra: list[str]) -> float:
    """``extract run`` of ``checkout``'s pipeline in its own process; the wall seconds it took."""
    command = [sys.executable, "-m", "pipeline.cli", "run", "--schema", str(checkout / "schemas" / "invoice.json"),
               str(folder), "--output", str(out), "--model", model, "--backend", "text", "--workers", "2",
               "--threads", "1", "--einvoice", "ignore", "--no-api", *extra]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=out.parent, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def score(folder: Path, out: Path, seconds: float) -> dict[str, Any]:
    """What a run cost and bought, from its tables and this checkout's scorer."""
    pages = read_table(out, "pages").to_pylist()
    docs = {Path(d["source_path"]).stem: d for d in read_table(out, "documents").to_pylist()}
    wrong = {stem: sorted(k for k, c in evaluate_one(folder / f"{stem}.json", out).items() if c) for stem in docs}
    data = evaluate(folder, out).to_json()
    asked = [p for p in pages if p.get("attempts")]
    n = max(len(pages), 1)
    evaluated = [p.get("prompt_tokens_evaluated") for p in asked]
    line_items = {k: v for k, v in data["fields"].items() if k.startswith("line_items.")}
    manifests = sorted((out / "_runs").glob("*.json"))
    work = json.loads(manifests[-1].read_text()).get("work") if manifests else None  # None before the setting
    return {
        "pages": len(pages), "model_requests": len(asked), "seconds": round(seconds, 1),
        "pages_per_core_hour": round(len(pages) / (seconds * CORES / 3600), 2),
        "answer_tokens_per_page": round(sum(p["completion_tokens"] or 0 for p in pages) / n, 1),
        "prompt_tokens_per_page": round(sum(p["prompt_tokens"] or 0 for p in pages) / n, 1),
        "prompt_tokens_evaluated_per_page": round(sum(evaluated) / n, 1) if None not in evaluated else None,
        "samples_per_request": round(sum(p["samples"] or 0 for p in asked) / max(len(asked), 1), 3),
        "greedy_settled": sum(p.get("sample_reason") == "greedy answer settled" for p in asked),
        "header_accuracy": data["header"]["accuracy"], "overall_f1": data["overall"]["f1"],
        "line_item_amount_f1": line_items.get("line_items.amount", {}).get("f1"),
        "flags": data["flags"], "halves": halves(docs, wrong), "wrong_fields": wrong,
        "fields": {k: round(v["accuracy"], 3) for k, v in data["fields"].items()},
        "work": work,  # the run's own account of its seconds per stage and tokens (manifest)
    }


def worktree(commit: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), commit], check=True,
                   capture_output=True)
    return where


def show(name: str, row: dict[str, Any]) -> None:
    flags = row["flags"]
    print(f"  {name:8} {row['pages']} pages in {row['seconds']} s: {row['pages_per_core_hour']} pages/core-hour, "
          f"{row['samples_per_request']} samples, {row['answer_tokens_per_page']} answer tokens and "
          f"{row['prompt_tokens_evaluated_per_page']} of {row['prompt_tokens_per_page']} prompt tokens evaluated "
          f"per page; header {row['header_accuracy']}, line-item F1 {row['line_item_amount_f1']}, flagged "
          f"{flags['flagged']}/{flags['documents']}, precision {flags['precision']}")
    for name_, h in sorted(row["halves"].items()):
        print(f"    {name_}: {h['documents']} docs, {h['wrong']} wrong, {h['flagged']} flagged, precision "
              f"{h['flag_precision']}, wrong and unflagged {len(h['wrong_unflagged'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="folders of documents with NAME.json truth beside them")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--before-commit", help="run this commit's pipeline as 'before' (git worktree)")
    parser.add_argument("--before-args", default="--sampling fixed",
                        help="extra 'extract run' arguments of the before run (default: the old sampling path)")
    parser.add_argument("--after-args", default="", help="extra 'extract run' arguments of the after run")
    parser.add_argument("--half", choices=["study", "score", "all"], default="all")
    parser.add_argument("--limit", type=int, help="at most this many documents per folder (first by name)")
    args = parser.parse_args()
    previous = RESULTS / "speed.json"
    results: dict[str, Any] = json.loads(previous.read_text()) if previous.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        before_checkout = worktree(args.before_commit, base / "before") if args.before_commit else ROOT
        before_args = [] if args.before_commit and args.before_args == "--sampling fixed" else \
            shlex.split(args.before_args)
        try:
            for folder in args.folders:
                docs = subset(folder, args.half, args.limit, base / f"{folder.name}-docs")
                rows = {}
                for name, checkout, extra in (("before", before_checkout, before_args),
                                              ("after", ROOT, shlex.split(args.after_args))):
                    out = base / f"{folder.name}-{name}" / "out"
                    out.parent.mkdir()
                    seconds = run(checkout, docs, out, args.model, extra)
                    rows[name] = {"pipeline": args.before_commit if name == "before" and args.before_commit
                                  else "this checkout", "args": extra, **score(docs, out, seconds)}
                print(f"{folder} ({args.half}, {rows['after']['pages']} pages, {args.model}):")
                for name, row in rows.items():
                    show(name, row)
                ratio = rows["after"]["pages_per_core_hour"] / max(rows["before"]["pages_per_core_hour"], 1e-9)
                print(f"  after / before: {ratio:.2f}x pages per core-hour")
                key = f"{folder.name}/{args.model}/{args.half}" + (f"/limit={args.limit}" if args.limit else "") + \
                      f"/before={args.before_commit or args.before_args}"
                results[key] = {**provenance(), "speedup": round(ratio, 2), **rows}
                write_results("speed", results)
        finally:
            if args.before_commit:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before_checkout)],
                               capture_output=True)


if __name__ == "__main__":
    main()
