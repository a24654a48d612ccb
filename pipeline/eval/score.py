"""Field-level accuracy, precision, recall and F1 of a run's documents against ground truth.

Truth is a folder of ``NAME.json`` files (the schema's shape), matched to documents whose
source file is ``NAME.*``.  Truth is **partial**: only the fields a truth file states are
scored (nested ones and the fields of line-item rows too), since real documents come with
truth that says what its source says and nothing more; a stated ``null`` means "stated
empty", and a value there is a false positive.  Values are compared by the field's schema
type with the consensus comparator (``pipeline.consensus.compare``: dates as dates, amounts
within 0.01, text case- and whitespace-folded), made lenient where truth itself is loose
(``matches``): amounts ignore the sign (credit notes state positive amounts in their XML,
negative on paper, and both are right), and text of several words matches by token overlap
(a truth's short brand against the legal name on the page).  Arrays of objects are first
paired by the best assignment, then scored field by field.  A wrong value counts as both a
false positive and a false negative.  Documents are also scored as wholes: one with any
wrong stated field "has an error", and ``needs_review`` flags are scored against that
(flag precision and recall), since a flag is only worth a person's time if it finds errors.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.consensus.compare import Node, child, field_kind, fold, pair_rows, same
from pipeline.consensus.normalize import normalize_amount
from pipeline.consensus.tolerance import SAME_AMOUNT
from pipeline.errors import InputError


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    stated: int = 0  # values the truth states (null included)
    correct: int = 0  # of those, read right (a stated null read as null too)

    @property
    def accuracy(self) -> float:
        return self.correct / self.stated if self.stated else 1.0

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
    flags: FlagCounts = field(default_factory=lambda: FlagCounts())
    completion_tokens: int = 0
    array_fields: set[str] = field(default_factory=set)  # scored row by row: not part of the header

    @property
    def overall(self) -> Counts:
        return _total(self.fields.values())

    @property
    def header(self) -> Counts:
        """The fields outside arrays (number, dates, parties, currency, totals): a document's head."""
        return _total(c for name, c in self.fields.items()
                      if not any(name == a or name.startswith(f"{a}.") for a in self.array_fields))

    def to_json(self) -> dict[str, Any]:
        def row(c: Counts) -> dict[str, Any]:
            return {"tp": c.tp, "fp": c.fp, "fn": c.fn, "precision": round(c.precision, 4),
                    "recall": round(c.recall, 4), "f1": round(c.f1, 4), "stated": c.stated,
                    "accuracy": round(c.accuracy, 4)}

        pages_per_s = self.pages / self.seconds if self.seconds else None
        return {
            "documents": self.documents, "documents_missing": self.documents_missing, "pages": self.pages,
            "compared_by": self.compared_by, "manifests_unreadable": self.manifests_unreadable,
            "documents_from_xml": self.documents_from_xml,
            "overall": row(self.overall), "header": row(self.header),
            "fields": {k: row(v) for k, v in sorted(self.fields.items())},
            "flags": self.flags.to_json(),
            "pages_per_second": round(pages_per_s, 4) if pages_per_s else None,
            "completion_tokens_per_page": round(self.completion_tokens / self.pages, 1) if self.pages else None,
            "api_cost_per_page_usd": (self.api_cost_usd / self.pages) if self.api_cost_usd and self.pages else None,
        }


@dataclass
class FlagCounts:
    """``needs_review`` against "has a real error": is a flag worth a person's time, and are the
    wrong documents flagged?"""

    documents: int = 0
    flagged: int = 0
    wrong: int = 0  # documents with at least one wrong stated field (or no record)
    flagged_wrong: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"documents": self.documents, "flagged": self.flagged, "wrong": self.wrong,
                "flagged_wrong": self.flagged_wrong,
                "share_flagged": round(self.flagged / self.documents, 4) if self.documents else None,
                "precision": round(self.flagged_wrong / self.flagged, 4) if self.flagged else None,
                "recall": round(self.flagged_wrong / self.wrong, 4) if self.wrong else None}


def _total(counts: Any) -> Counts:
    total = Counts()
    for c in counts:
        for name in ("tp", "fp", "fn", "stated", "correct"):
            setattr(total, name, getattr(total, name) + getattr(c, name))
    return total


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or (
        isinstance(value, dict) and all(_empty(v) for v in value.values()))


def matches(pred: Any, truth: Any, node: Node = None, root: dict[str, Any] | None = None) -> bool:
    """``same``, lenient where truth is loose (see the module docstring): amounts without their
    sign, text of several words by token overlap (half of the shorter side's words)."""
    kind = field_kind(node, root)
    if kind == "number" or (kind == "unknown" and isinstance(truth, (int, float)) and not isinstance(truth, bool)):
        x, y = normalize_amount(pred), normalize_amount(truth)
        return x is not None and y is not None and abs(abs(x) - abs(y)) <= SAME_AMOUNT
    if same(pred, truth, node, root):
        return True
    if kind in ("text", "unknown") and isinstance(pred, str) and isinstance(truth, str):
        a, b = set(_tokens(pred)), set(_tokens(truth))
        if len(a) >= 2 or len(b) >= 2:
            return len(a & b) * 2 >= min(len(a), len(b)) and bool(a & b)
    return False


def _tokens(text: str) -> list[str]:
    """Words split at spaces and commas only: an identifier such as ``INV-1`` stays one word."""
    import re

    return [t.strip(".;:()") for t in re.split(r"[\s,]+", fold(text)) if t.strip(".;:()")]


def score_value(pred: Any, truth: Any, path: str, report: EvalReport, node: Node = None,
                root: dict[str, Any] | None = None) -> None:
    """Score what ``truth`` states (partial truth: a key it leaves out is not scored)."""
    if isinstance(truth, dict):
        p = pred if isinstance(pred, dict) else {}
        for key in sorted(truth):
            score_value(p.get(key), truth[key], f"{path}.{key}", report, child(node, key, root), root)
        return
    if isinstance(truth, list):
        report.array_fields.add(path.removeprefix("$."))
        _score_rows(pred if isinstance(pred, list) else [], truth, path, report, child(node, None, root), root)
        return
    counts = report.fields[path]
    counts.stated += 1
    if _empty(pred) and _empty(truth):
        counts.correct += 1
    elif _empty(pred):
        counts.fn += 1
    elif _empty(truth):
        counts.fp += 1
    elif matches(pred, truth, node, root):
        counts.tp += 1
        counts.correct += 1
    else:
        counts.fp += 1
        counts.fn += 1


def _distance(pred: Any, truth: Any, items: Node, root: dict[str, Any] | None) -> int:
    """Stated fields on which a predicted row differs from a truth row (for pairing rows up)."""
    if isinstance(truth, dict):
        p = pred if isinstance(pred, dict) else {}
        return sum(0 if _empty(p.get(k)) and _empty(v) or matches(p.get(k), v, child(items, k, root), root) else 1
                   for k, v in truth.items())
    return 0 if matches(pred, truth, items, root) else 1


def _score_rows(pred: list[Any], truth: list[Any], path: str, report: EvalReport, items: Node,
                root: dict[str, Any] | None) -> None:
    """Rows paired by the best assignment; an unpaired truth row is missed field by field, an
    unpaired predicted row is a false positive on each field the truth's rows state."""
    paired = pair_rows(pred, truth, lambda p, t: _distance(p, t, items, root))
    pairs: list[tuple[Any, Any]] = [(pred[r], truth[c]) for r, c in paired]
    used_p, used_t = {r for r, _ in paired}, {c for _, c in paired}
    pairs += [(None, t) for i, t in enumerate(truth) if i not in used_t]
    for p, t in pairs:
        score_value(p, t, path, report, items, root)
    stated_keys = sorted({k for t in truth if isinstance(t, dict) for k in t})
    for i, p in enumerate(pred):
        if i in used_p:
            continue
        row = p if isinstance(p, dict) else {}
        for key in stated_keys if isinstance(p, dict) else []:
            if not _empty(row.get(key)):
                report.fields[f"{path}.{key}"].fp += 1
        if not isinstance(p, dict) and not _empty(p):
            report.fields[path].fp += 1


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
    elif str(truth_path) == CORRECTIONS_TRUTH:
        truth = corrections_truth(output, docs, schema)
    else:
        truth = load_truth(truth_path)
    by_stem = {Path(d["source_path"]).stem: d for d in docs}
    for stem, expected in truth.items():
        doc = by_stem.get(stem)
        report.documents += 1
        predicted = {k: doc.get(k) for k in expected} if doc and doc["status"] != "error" else {}
        if not predicted:
            report.documents_missing += 1
        before = report.overall
        score_value(predicted, expected, "$", report, schema, schema)
        after = report.overall
        wrong = not predicted or after.fp + after.fn > before.fp + before.fn
        flagged = doc is None or bool(doc.get("needs_review"))
        flags = report.flags
        flags.documents += 1
        flags.flagged += flagged
        flags.wrong += wrong
        flags.flagged_wrong += flagged and wrong
    report.fields = defaultdict(Counts, {k.removeprefix("$."): v for k, v in report.fields.items()})
    runs = [m for m in runs if m["counts"]["pages"]]
    if runs:  # speed and cost over the runs that did work (an incremental rerun does none)
        report.pages = sum(int(m["counts"]["pages"]) for m in runs)
        report.seconds = sum(float(m["timings"]["seconds"]) for m in runs)
        report.completion_tokens = _completion_tokens(output)
        costs = [m.get("adjudication", {}).get("cost_usd") for m in runs]
        report.api_cost_usd = sum(c for c in costs if c is not None) if any(c is not None for c in costs) else None
    return report


def _completion_tokens(output: Path) -> int:
    """Answer tokens of every page the output holds (the model's decoding is the cost)."""
    from pipeline.sink.dataset import read_table

    pages = read_table(output, "pages")
    return int(sum(v or 0 for v in pages.column("completion_tokens").to_pylist())) \
        if "completion_tokens" in pages.column_names else 0


EINVOICE_TRUTH = "einvoice"  # --truth einvoice: the truth is each document's own e-invoice XML
CORRECTIONS_TRUTH = "corrections"  # --truth corrections: the documents people approved (pipeline.review)


def corrections_truth(output: Path, docs: list[dict[str, Any]], schema: dict[str, Any] | None) -> dict[str, Any]:
    """Truth from the reviews: every approved document as the person left it, every field of it
    stated (a person who approves confirms the empty fields too).  Reviewed documents are the
    doubtful ones, so this measures the model where it is weakest, not on average."""
    from pipeline.review.corrections import truth

    names = list((schema or {}).get("properties") or [])
    if not names and docs:
        names = list(docs[0])[:list(docs[0]).index("run_id")]
    reviewed = truth(output, names)
    if not reviewed:
        raise InputError(f"nobody has approved a document of {output} yet: review some with 'extract review {output}'")
    return {Path(path).stem: record for path, record in reviewed.values()}


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
