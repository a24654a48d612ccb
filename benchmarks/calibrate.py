"""Fit ``field_probability`` on the studied half of the dev set; its reliability on the other half.

Reads the page rows of runs over folders of documents with truth beside them (``extract run`` or
``benchmarks/real_accuracy.py --keep``; with ``--einvoice ignore`` for PDFs with XML, so the model
read every page), takes each document value outside arrays with the signs of the page it came from,
labels it right or wrong with ``extract eval``'s comparator where the truth states it (a folder of
truth JSON, or ``einvoice``: the XML inside each PDF), and fits ``rules.confidence``'s logistic
model on the documents of the studied half (``_split.half``). Writes the weights to
``pipeline/rules/calibration.json`` (``--write``) and the reliability table of both halves, beside
the samples' agreement share read as a probability, to ``benchmarks/results/calibration.json``.

    python benchmarks/calibrate.py OUT_ROOT=TRUTH_FOLDER [OUT_ROOT=einvoice ...] [--write]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from _results import provenance, write_results
from _split import half

from pipeline.eval.score import einvoice_truth, load_truth, matches
from pipeline.merge.sources import taken_from
from pipeline.review.fields import record_of
from pipeline.rules.confidence import COEFFICIENTS, FEATURES, features, fit, probability, reliability, scored_paths
from pipeline.schema.compiled import load_schema
from pipeline.schema.paths import node_at, steps
from pipeline.sink.dataset import read_table

ROOT = Path(__file__).resolve().parents[1]
IN_DOUBT = "in doubt: "


def stated(truth: Any, path: str) -> tuple[bool, Any]:
    """Whether the truth states ``path`` (partial truth: a key left out is unknown), and its value."""
    value = truth
    for step in steps(path):
        if not isinstance(value, dict) or step not in value:
            return False, None
        value = value[step]
    return True, value


def examples(out: Path, truth_spec: str, schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Each document value outside arrays that the truth states, with the signs of the page the
    document took it from (``merge.sources.taken_from``, as ``merge.review.document_probability``
    does) and whether it is right."""
    docs = [d for d in read_table(out, "documents").to_pylist() if d["status"] == "ok" and not d.get("adjudicated")]
    truth = einvoice_truth(docs, schema, str(out))[0] if truth_spec == "einvoice" else load_truth(Path(truth_spec))
    names = list(schema["properties"])
    pages: dict[str, list[dict[str, Any]]] = {}
    for row in read_table(out, "pages").to_pylist():
        if row["status"] == "ok" and row.get("prompt_tokens"):  # a page the local model read
            pages.setdefault(row["source_path"], []).append({**row, "_record": record_of(row, names)})
    found = []
    for doc in docs:
        stem, read = Path(doc["source_path"]).stem, sorted(pages.get(doc["source_path"], []),
                                                             key=lambda r: r["page_number"])
        if stem not in truth or not read:
            continue
        merged = record_of(doc, names)
        for path, value in scored_paths(merged, schema):
            known, expected = stated(truth[stem], path)
            if not known:
                continue
            row = read[taken_from(read, merged, path, schema) or 0]
            right = value is None if expected is None else matches(value, expected, node_at(schema, path), schema)
            signs = _signs(row)
            found.append({"document": stem, "half": half(Path(doc["source_path"])), "path": path,
                          "signs": features(path, value, **signs), "right": bool(right),
                          "agreement": signs["confidence"].get(path, 1.0)})
    return found


def _signs(row: dict[str, Any]) -> dict[str, Any]:
    reasons = row.get("review_reasons") or []
    open_fields = [p.strip() for r in reasons if r.startswith(IN_DOUBT) for p in r[len(IN_DOUBT):].split(",")]
    return {"confidence": dict(row.get("field_confidence") or []), "certainty": dict(row.get("certainty") or []),
            "sources": dict(row.get("field_sources") or []), "open_fields": open_fields,
            "doubts": row.get("doubts") or [], "repairs": row.get("repairs") or [],
            "samples": row.get("samples") or 1, "truncated": bool(row.get("truncated"))}


def summary(rows: list[dict[str, Any]], weights: list[float]) -> dict[str, Any]:
    predicted = [probability(r["signs"], weights) for r in rows]
    labels = [r["right"] for r in rows]
    agreement = [r["agreement"] for r in rows]
    brier = lambda p: round(sum((x - y) ** 2 for x, y in zip(p, labels, strict=True)) / max(1, len(p)), 4)  # noqa: E731
    return {"values": len(rows), "documents": len({r["document"] for r in rows}),
            "right": round(sum(labels) / max(1, len(labels)), 3),
            "brier": {"field_probability": brier(predicted), "agreement": brier(agreement)},
            "reliability": reliability(predicted, labels), "agreement_reliability": reliability(agreement, labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="OUT_ROOT=TRUTH: a run's output and the folder its truth is in, "
                        "or 'einvoice' (the XML inside each PDF, for a run with --einvoice ignore)")
    parser.add_argument("--schema", type=Path, default=ROOT / "schemas" / "invoice.json")
    parser.add_argument("--l2", type=float, default=1.0, help="the fit's penalty on the weights")
    parser.add_argument("--write", action="store_true", help=f"write the fitted weights to {COEFFICIENTS}")
    args = parser.parse_args()
    schema = load_schema(args.schema).raw
    rows = [r for run in args.runs for r in examples(Path(run.split("=")[0]), run.split("=")[1], schema)]
    study = [r for r in rows if r["half"] == "study"]
    score = [r for r in rows if r["half"] == "score"]
    if not study:
        raise SystemExit("no values with stated truth in the studied half")
    weights = fit([r["signs"] for r in study], [r["right"] for r in study], l2=args.l2)
    result = {"features": list(FEATURES), "weights": weights, "l2": args.l2, "runs": args.runs,
              "study": summary(study, weights), "score": summary(score, weights)}
    for name in ("study", "score"):
        part = result[name]
        print(f"\n{name}: {part['values']} values of {part['documents']} documents, {part['right']} right; "
              f"Brier {part['brier']['field_probability']} (agreement as a probability: {part['brier']['agreement']})")
        print(f"{'bin':>10} {'values':>7} {'predicted':>10} {'right':>7}   agreement: {'values':>7} {'right':>7}")
        for row, base in zip(part["reliability"], part["agreement_reliability"], strict=True):
            print(f"{row['bin']:>10} {row['values']:>7} {row['predicted'] or '':>10} {row['right'] or '':>7}   "
                  f"{'':>10} {base['values']:>7} {base['right'] or '':>7}")
    print("\nweights: " + ", ".join(f"{f} {w:+.2f}" for f, w in zip(FEATURES, weights, strict=True)))
    if args.write:
        COEFFICIENTS.write_text(json.dumps({"features": list(FEATURES), "weights": weights,
                                            "fitted": {**provenance(), "values": len(study), "l2": args.l2}},
                                           indent=2) + "\n")
        print(f"wrote {COEFFICIENTS}")
    write_results("calibration", result)


if __name__ == "__main__":
    main()
