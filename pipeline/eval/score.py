"""Field-level precision, recall and F1 of a run's documents against ground truth.

Truth is a folder of ``NAME.json`` files (the schema's shape), matched to documents whose
source file is ``NAME.*``.  Values are compared by the field's schema type, with the same
comparator as consensus (``pipeline.consensus.compare``): dates as dates, amounts within 0.01,
text case- and whitespace-insensitively.  Nested objects are scored field by
field (``seller.name``); arrays of objects (line items) are first paired by the best
assignment (fewest disagreeing fields), then scored field by field, unpaired rows counting as
misses or false positives.  A wrong value counts as both a false positive and a false negative.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.consensus.compare import Node, child, row_distance, same
from pipeline.errors import InputError


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class EvalReport:
    fields: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    documents: int = 0
    documents_missing: int = 0
    pages: int = 0
    seconds: float | None = None
    api_cost_usd: float | None = None
    compared_by: str = "schema"
    documents_from_xml: int = 0  # --truth einvoice: documents left out, read from their XML in the run
    manifests_unreadable: list[str] = field(default_factory=list)

    @property
    def overall(self) -> Counts:
        total = Counts()
        for c in self.fields.values():
            total.tp, total.fp, total.fn = total.tp + c.tp, total.fp + c.fp, total.fn + c.fn
        return total

    def to_json(self) -> dict[str, Any]:
        def row(c: Counts) -> dict[str, Any]:
            return {"tp": c.tp, "fp": c.fp, "fn": c.fn, "precision": round(c.precision, 4),
                    "recall": round(c.recall, 4), "f1": round(c.f1, 4)}

        pages_per_s = self.pages / self.seconds if self.seconds else None
        return {
            "documents": self.documents, "documents_missing": self.documents_missing, "pages": self.pages,
            "compared_by": self.compared_by, "manifests_unreadable": self.manifests_unreadable,
            "documents_from_xml": self.documents_from_xml,
            "overall": row(self.overall), "fields": {k: row(v) for k, v in sorted(self.fields.items())},
            "pages_per_second": round(pages_per_s, 4) if pages_per_s else None,
            "api_cost_per_page_usd": (self.api_cost_usd / self.pages) if self.api_cost_usd and self.pages else None,
        }


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def score_value(pred: Any, truth: Any, path: str, report: EvalReport, node: Node = None,
                root: dict[str, Any] | None = None) -> None:
    if isinstance(truth, dict) or isinstance(pred, dict):
        t, p = truth if isinstance(truth, dict) else {}, pred if isinstance(pred, dict) else {}
        for key in sorted(set(t) | set(p)):
            score_value(p.get(key), t.get(key), f"{path}.{key}", report, child(node, key, root), root)
        return
    if isinstance(truth, list) or isinstance(pred, list):
        _score_rows(pred if isinstance(pred, list) else [], truth if isinstance(truth, list) else [], path, report,
                    child(node, None, root), root)
        return
    counts = report.fields[path]
    if _empty(pred) and _empty(truth):
        return
    if _empty(pred):
        counts.fn += 1
    elif _empty(truth):
        counts.fp += 1
    elif same(pred, truth, node, root):
        counts.tp += 1
    else:
        counts.fp += 1
        counts.fn += 1


def _score_rows(pred: list[Any], truth: list[Any], path: str, report: EvalReport, items: Node,
                root: dict[str, Any] | None) -> None:
    from scipy.optimize import linear_sum_assignment

    pairs: list[tuple[Any, Any]] = []
    if pred and truth:
        cost = [[row_distance(p, t, items, root) for t in truth] for p in pred]
        rows, cols = linear_sum_assignment(cost)
        pairs = [(pred[r], truth[c]) for r, c in zip(rows, cols, strict=True)]
        used_p, used_t = set(rows.tolist()), set(cols.tolist())
    else:
        used_p, used_t = set(), set()
    pairs += [(p, None) for i, p in enumerate(pred) if i not in used_p]
    pairs += [(None, t) for i, t in enumerate(truth) if i not in used_t]
    for p, t in pairs:
        score_value(p, t, path, report, items, root)


def load_truth(truth: Path) -> dict[str, dict[str, Any]]:
    files = [truth] if truth.is_file() else sorted(truth.glob("*.json"))
    if not files:
        raise InputError(f"no ground-truth JSON files found at {truth}")
    out = {}
    for f in files:
        try:
            out[f.stem] = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"ground truth {f} is not valid JSON: {exc}") from None
    return out


def evaluate(truth_path: Path, output: Path, schema: dict[str, Any] | None = None) -> EvalReport:
    """Score OUTPUT's documents against the truth; fields are compared as ``schema`` (by default
    the schema the output's last run recorded) types them."""
    from pipeline.sink.dataset import manifests, read_table

    docs = read_table(output, "documents").to_pylist()
    report = EvalReport()
    runs = manifests(output, report.manifests_unreadable)
    if schema is None:
        schema, report.compared_by = _recorded_schema(runs)
    if str(truth_path) == EINVOICE_TRUTH:
        truth, report.documents_from_xml = einvoice_truth(docs, schema, report.compared_by)
        docs = [d for d in docs if d.get("einvoice") != "xml"]
    else:
        truth = load_truth(truth_path)
    by_stem = {Path(d["source_path"]).stem: d for d in docs}
    for stem, expected in truth.items():
        doc = by_stem.get(stem)
        report.documents += 1
        predicted = {k: doc.get(k) for k in expected} if doc and doc["status"] != "error" else {}
        if not predicted:
            report.documents_missing += 1
        score_value(predicted, expected, "$", report, schema, schema)
    report.fields = defaultdict(Counts, {k.removeprefix("$."): v for k, v in report.fields.items()})
    runs = [m for m in runs if m["counts"]["pages"]]
    if runs:  # speed and cost over the runs that did work (an incremental rerun does none)
        report.pages = sum(int(m["counts"]["pages"]) for m in runs)
        report.seconds = sum(float(m["timings"]["seconds"]) for m in runs)
        costs = [m.get("adjudication", {}).get("cost_usd") for m in runs]
        report.api_cost_usd = sum(c for c in costs if c is not None) if any(c is not None for c in costs) else None
    return report


EINVOICE_TRUTH = "einvoice"  # --truth einvoice: the truth is each document's own e-invoice XML


def einvoice_truth(docs: list[dict[str, Any]], schema: dict[str, Any] | None,
                   origin: str) -> tuple[dict[str, dict[str, Any]], int]:
    """Truth from the documents' own e-invoice XML (what it states only), and how many documents
    were read from their XML in the run and so are left out: scoring the XML against itself
    measures nothing (run the model path with ``--einvoice ignore`` to measure it)."""
    from pipeline.einvoice.documents import inspect, stated
    from pipeline.schema.compiled import compile_schema

    if schema is None:
        raise InputError(f"--truth einvoice needs the run's schema, and it cannot be read ({origin})")
    compiled = compile_schema(schema, "the run's schema")
    truth, from_xml = {}, 0
    for doc in docs:
        if doc.get("einvoice") == "xml":
            from_xml += 1
            continue
        outcome = inspect(Path(doc["source_path"]), compiled)
        if outcome is not None and outcome.record is not None:
            truth[Path(doc["source_path"]).stem] = stated(outcome.record)
    if not truth:
        raise InputError("no document of this output carries a usable e-invoice XML to score against"
                         + (f" ({from_xml} were read from their XML: run with --einvoice ignore)" if from_xml else ""))
    return truth, from_xml


def _recorded_schema(runs: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """The schema of the output's last run, and how values will be compared (said in the report)."""
    from pipeline.errors import SchemaError
    from pipeline.schema.compiled import load_schema

    path = (runs[-1].get("schema") or {}).get("path") if runs else None
    if not path:
        return None, "value types (no run manifest names a schema)"
    try:
        return load_schema(path).raw, f"schema {path}"
    except SchemaError as exc:
        return None, f"value types (the run's schema cannot be read: {exc.message})"
