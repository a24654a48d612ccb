"""Accuracy on real documents, the model path only (not a test).

Runs ``extract run`` over a folder of real documents with truth JSON beside each
(``../shared/realdev/invoices``: PDFs with ``--einvoice ignore``, so the model reads every page;
``../shared/realdev/receipts``: scanned receipts through OCR) with each model, text backend,
local only, and scores the documents with ``extract eval``'s partial-truth scorer.  Prints the
per-field table, the header accuracy, line-item F1, flag precision / recall, pages/s and answer
tokens per page; writes ``benchmarks/results/real_accuracy.json`` (one entry per folder and model,
so runs of one folder or one model add to the file).

    python benchmarks/real_accuracy.py ../shared/realdev/invoices ../shared/realdev/receipts \\
        --model qwen2.5-coder-1.5b --model qwen2.5-coder-0.5b [--samples 3] [--keep OUT] \\
        [--below 0.6] [--answers DIR]

``--answers DIR`` records every model answer in DIR, and a later run with the same DIR replays
them (``_answers.py``): a change to voting, rules, grounding or flagging is then measured in
seconds on exactly the answers it was measured on before (pages/s are then not the model's).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from _answers import start_ray
from _results import RESULTS, provenance, write_results
from _split import half

from pipeline.config.settings import AdjudicationConfig, ModelConfig, build_config, default_of
from pipeline.eval.score import evaluate
from pipeline.model import registry as models
from pipeline.run.driver import execute_run
from pipeline.schema.compiled import load_schema
from pipeline.sink.dataset import read_table

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "invoice.json"


def measure(folder: Path, model: str, samples: int, out: Path, amounts: str = default_of("amounts"),
            below: float = default_of("adjudicate_below"), schema: Path = SCHEMA) -> dict[str, Any]:
    cfg = build_config(schema_path=schema, inputs=(folder,), output=out, backend="text", workers=2,
                       model=ModelConfig(path=models.model_path(model), n_threads=1, samples=samples,
                                         amounts=amounts),
                       adjudication=AdjudicationConfig(below=below), einvoice="ignore")
    summary = execute_run(cfg, load_schema(schema))
    report = evaluate(folder, out)
    data = report.to_json()
    wrong: dict[str, list[str]] = {}
    docs = {Path(d["source_path"]).stem: d for d in read_table(out, "documents").to_pylist()}
    for stem in sorted(docs):
        truth_file = folder / f"{stem}.json"
        if truth_file.is_file():
            single = evaluate_one(truth_file, out)
            wrong[stem] = sorted(k for k, c in single.items() if c)
    line_items = {k: v for k, v in data["fields"].items() if k.startswith("line_items.")}
    return {
        "folder": str(folder), "model": model, "samples": samples, "amounts": amounts, "below": below,
        "workers": 2, "threads": 1,
        "pages": summary.pages, "seconds": round(summary.seconds, 1),
        "pages_per_second": data["pages_per_second"], "completion_tokens_per_page": data["completion_tokens_per_page"],
        "header_accuracy": data["header"]["accuracy"], "overall_f1": data["overall"]["f1"],
        "line_item_amount_f1": line_items.get("line_items.amount", {}).get("f1"),
        "flags": data["flags"], "fields": data["fields"], "wrong_fields": wrong,
        "dropped_rows": sum(d.get("dropped_rows") or 0 for d in docs.values()),
        "rule_failures": {s: d.get("rule_failures") for s, d in docs.items() if d.get("rule_failures")},
        "review_reasons": {s: d.get("review_reasons") for s, d in docs.items() if d.get("review_reasons")},
        "halves": halves(docs, wrong),
    }


def halves(docs: dict[str, dict[str, Any]], wrong: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Per half of the split (benchmarks/_split.py): documents wrong, flagged, and wrong with no flag.

    A flag is a promise that what is not flagged is right: precision is the share of flagged
    documents that have a wrong field, recall the share of wrong documents that are flagged."""
    out: dict[str, dict[str, Any]] = {}
    for stem, fields in wrong.items():
        row = out.setdefault(half(Path(docs[stem]["source_path"])), {"documents": 0, "wrong": 0, "flagged": 0,
                                                                     "flagged_wrong": 0, "wrong_unflagged": [],
                                                                     "flagged_right": []})
        flagged = bool(docs[stem].get("needs_review"))
        row["documents"] += 1
        row["wrong"] += bool(fields)
        row["flagged"] += flagged
        row["flagged_wrong"] += flagged and bool(fields)
        if fields and not flagged:
            row["wrong_unflagged"].append(stem)
        if flagged and not fields:  # a flag a person spends on a right record: why, from the record itself
            row["flagged_right"].append(f"{stem}: {'; '.join(docs[stem].get('review_reasons') or [])}"[:300])
    for row in out.values():
        row["flag_precision"] = round(row["flagged_wrong"] / row["flagged"], 3) if row["flagged"] else None
        row["flag_recall"] = round(row["flagged_wrong"] / row["wrong"], 3) if row["wrong"] else None
        row["wrong_unflagged_share"] = round(len(row["wrong_unflagged"]) / row["documents"], 3)
    return out


def evaluate_one(truth_file: Path, out: Path) -> dict[str, int]:
    """Wrong or missing stated fields of one document (fp + fn per field)."""
    report = evaluate(truth_file, out)
    return {k: c.fp + c.fn for k, c in report.fields.items()}


def show(result: dict[str, Any]) -> None:
    print(f"\n{result['folder']}  model={result['model']} samples={result['samples']}  "
          f"{result['pages']} pages in {result['seconds']} s ({result['pages_per_second']} pages/s, "
          f"{result['completion_tokens_per_page']} answer tokens/page)")
    print(f"{'field':32} {'stated':>6} {'acc':>6} {'F1':>6}")
    for name, row in result["fields"].items():
        print(f"{name:32} {row['stated']:>6} {row['accuracy']:>6.3f} {row['f1']:>6.3f}")
    flags = result["flags"]
    print(f"header accuracy {result['header_accuracy']}  line-item amount F1 {result['line_item_amount_f1']}  "
          f"flagged {flags['flagged']}/{flags['documents']} (share {flags['share_flagged']}), flag precision "
          f"{flags['precision']}, recall {flags['recall']}")
    for name, row in sorted(result["halves"].items()):
        print(f"  {name}: {row['documents']} documents, {row['wrong']} wrong, {row['flagged']} flagged, "
              f"precision {row['flag_precision']}, recall {row['flag_recall']}, wrong and unflagged "
              f"{len(row['wrong_unflagged'])} ({row['wrong_unflagged_share']}): {', '.join(row['wrong_unflagged'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="folders of documents with NAME.json truth beside them")
    parser.add_argument("--model", action="append", help="model name (repeatable; default: the 1.5B)")
    parser.add_argument("--samples", type=int, default=default_of("samples"), help="samples per page")
    parser.add_argument("--amounts", choices=["printed", "free"], default=default_of("amounts"),
                        help="amount fields: only numbers printed on the page, or free")
    parser.add_argument("--below", type=float, default=default_of("adjudicate_below"),
                        help="agreement under which a field is in doubt (--adjudicate-below)")
    parser.add_argument("--keep", type=Path, help="keep the output roots under this folder")
    parser.add_argument("--answers", type=Path,
                        help="answer the model's calls from this folder where it has them, recording the rest "
                             "(benchmarks/_answers.py): a change after the model measured without rerunning it")
    parser.add_argument("--schema", type=Path, default=SCHEMA,
                        help="the schema (another checkout's, with its pipeline on PYTHONPATH)")
    parser.add_argument("--tag", default="", help="added to each entry's key: a run of another checkout's pipeline "
                        "(PYTHONPATH=../old) beside this one's, e.g. --tag before-5fe8b32")
    args = parser.parse_args()
    if args.answers:
        start_ray(args.answers, cpus=2)
    previous = RESULTS / "real_accuracy.json"
    results: dict[str, Any] = json.loads(previous.read_text()) if previous.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        for folder in args.folders:
            for model in args.model or ["qwen2.5-coder-1.5b"]:
                out = base / f"{folder.name}-{model}-s{args.samples}-{args.amounts}-b{args.below}"
                result = measure(folder, model, args.samples, out, args.amounts, args.below, args.schema)
                show(result)
                key = f"{folder.name}/{model}/samples={args.samples}/amounts={args.amounts}/below={args.below}" + (
                    f"/{args.tag}" if args.tag else "")
                results[key] = {**provenance(), **result}
                write_results("real_accuracy", results)


if __name__ == "__main__":
    main()
