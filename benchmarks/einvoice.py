"""E-invoices on real documents: is every value the XML states exact, and how fast (not a test).

For every PDF / XML in a folder (``../shared/realdev/invoices``: real and reference invoices
with truth JSON beside each), reads the e-invoice as ``extract run --einvoice use`` does and
scores the records against the truth with the project's scorer, on the fields the truth states.
Then runs the pipeline itself (``--einvoice use``) over the e-invoices and, with ``--verify
MODEL``, ``--einvoice verify`` with that model (text backend), counting the fields flagged.
Writes ``benchmarks/results/einvoice.json``.

    python benchmarks/einvoice.py ../shared/realdev/invoices [--verify qwen2.5-coder-1.5b]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _results import write_results

from pipeline.config.settings import AdjudicationConfig, ModelConfig, build_config
from pipeline.einvoice.documents import inspect
from pipeline.eval.score import EvalReport, score_value
from pipeline.model import registry as models
from pipeline.run.driver import execute_run
from pipeline.schema.compiled import load_schema
from pipeline.sink.dataset import read_table

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "invoice.json"


def read_all(folder: Path) -> tuple[dict[str, Any], list[Path]]:
    """Every input's e-invoice outcome, timed (warm), and its record scored against the truth."""
    schema = load_schema(SCHEMA)
    inputs = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".pdf", ".xml"))
    inspect(inputs[0], schema)  # imports and the first XSD compile are a worker's one-off cost
    report, rows, einvoices = EvalReport(), [], []
    for path in inputs:
        started = time.perf_counter()
        outcome = inspect(path, schema)
        seconds = time.perf_counter() - started
        row: dict[str, Any] = {"file": path.name, "seconds": round(seconds, 4),
                               "einvoice": None if outcome is None else outcome.flavor,
                               "error": None if outcome is None else outcome.error}
        truth_file = path.with_suffix(".json")
        if outcome is not None:
            einvoices.append(path)
        if outcome is not None and outcome.record is not None and truth_file.is_file():
            truth = json.loads(truth_file.read_text())
            found = outcome.record  # scored on what the truth states only (partial truth)
            single = EvalReport()
            score_value(found, truth, "$", single, schema.raw, schema.raw)
            score_value(found, truth, "$", report, schema.raw, schema.raw)
            row["wrong"] = sorted(f.removeprefix("$.") for f, c in single.fields.items() if c.fp or c.fn)
        rows.append(row)
    used = [r for r in rows if r["einvoice"] and not r["error"]]
    overall = report.overall
    summary = {
        "inputs": len(rows), "einvoices": len(einvoices), "read_from_xml": len(used),
        "not_used": {r["file"]: r["error"] for r in rows if r["error"]},
        "field_accuracy_on_stated_fields": round(overall.tp / (overall.tp + overall.fn), 4) if overall.tp else None,
        "fields_scored": overall.tp + overall.fn,
        "seconds_per_document_max": max((r["seconds"] for r in used), default=None),
        "seconds_per_document_mean": round(sum(r["seconds"] for r in used) / len(used), 4) if used else None,
        "per_field": {k.removeprefix("$."): round(c.f1, 4) for k, c in sorted(report.fields.items())},
    }
    return {"summary": summary, "documents": rows}, einvoices


def run_pipeline(einvoices: list[Path], mode: str, model: str, out: Path) -> dict[str, Any]:
    """``extract run`` over the e-invoices in ``mode`` (text backend, 1 sample, local only)."""
    folder = out.parent / f"in-{mode}"
    folder.mkdir(parents=True, exist_ok=True)
    for path in einvoices:
        (folder / path.name).symlink_to(path.resolve())
    cfg = build_config(schema_path=SCHEMA, inputs=(folder,), output=out, backend="text", workers=2,
                       model=ModelConfig(path=models.model_path(model), n_threads=1, samples=1),
                       adjudication=AdjudicationConfig(), einvoice=mode)
    summary = execute_run(cfg, load_schema(SCHEMA))
    docs = read_table(out, "documents").to_pylist()
    flagged: dict[str, list[str]] = defaultdict(list)
    for doc in docs:
        for mismatch in doc.get("einvoice_mismatches") or []:
            flagged[Path(doc["source_path"]).name].append(mismatch)
    return {"mode": mode, "model": model, "documents": len(docs), "seconds": summary.seconds,
            "seconds_per_document": round(summary.seconds / max(1, len(docs)), 3),
            "read_from_xml": sum(d.get("einvoice") == "xml" for d in docs),
            "verified": sum(d.get("einvoice") == "verified" for d in docs),
            "documents_flagged": len(flagged), "fields_flagged": sum(len(v) for v in flagged.values()),
            "flags": dict(flagged)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="folder of PDFs / XMLs with NAME.json truth beside them")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="model for the pipeline runs")
    parser.add_argument("--verify", action="store_true", help="also run --einvoice verify with --model")
    args = parser.parse_args()
    results, einvoices = read_all(args.folder)
    print(json.dumps(results["summary"], indent=1))
    with tempfile.TemporaryDirectory() as tmp:
        results["use"] = run_pipeline(einvoices, "use", args.model, Path(tmp) / "use" / "out")
        print({k: v for k, v in results["use"].items() if k != "flags"})
        if args.verify:
            results["verify"] = run_pipeline(einvoices, "verify", args.model, Path(tmp) / "verify" / "out")
            print({k: v for k, v in results["verify"].items() if k != "flags"})
    write_results("einvoice", {"folder": str(args.folder), **results})


if __name__ == "__main__":
    main()
