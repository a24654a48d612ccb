"""A probability that a value is right, from everything the page knows about it.

``field_confidence`` is the samples' agreement share: a small model agrees with itself readily, so
0.67 or 1.0 is not how often the value is right.  Each value of a page's record has more signs:
how the samples agreed, how sure the model was of it (``certainty``, the greedy answer's least
likely token), whether and how it was found printed on the page (``field_sources``), whether it
is in doubt for a reason of its own or was repaired by a rule, whether it is null, whether the
answer was cut.  A logistic model over those signs, fitted on the studied half of the dev set
(``benchmarks/calibrate.py``, which writes ``calibration.json`` beside this module and the
reliability table of the other half), turns them into ``field_probability``: of the values given
0.9, about nine in ten are right, on documents like the dev set's.  The signs are the schema's
and the pipeline's, never a field's name, so one model serves every schema; it is refitted when
the signs change.

Rows are not scored: a row's values are paired with the truth's rows only after the fact, and the
dev set's truth states few of them.  ``field_probability`` covers the values outside arrays.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.schema.paths import leaves

COEFFICIENTS = Path(__file__).with_name("calibration.json")
MATCHES = ("exact", "normalised", "fuzzy", "none")  # ground.sources.MATCH_KINDS; a value with no source: none of them
FEATURES = ("bias", "agreement", "voted", "certainty", *(f"match_{m}" for m in MATCHES), "null", "in_doubt",
            "repaired", "truncated")
FLOOR = 1e-4  # certainties below this are all "unsure"


def features(path: str, value: Any, *, confidence: Mapping[str, float], certainty: Mapping[str, float],
             sources: Mapping[str, Any], open_fields: Sequence[str], doubts: Sequence[str],
             repairs: Sequence[str], samples: int, truncated: bool) -> list[float]:
    """The signs of one value, in ``FEATURES`` order, each between 0 and 1."""
    source = sources.get(path) or {}
    match = source.get("match") if isinstance(source, Mapping) else None
    sure = certainty.get(path)
    # the greedy answer's probability on a log scale: 1e-4 -> 0, 1 -> 1; absent (a voted or repaired value): 1
    scaled = 1.0 if sure is None else max(0.0, math.log10(max(sure, FLOOR)) / -math.log10(FLOOR) + 1.0)
    mine = (path, f"{path}.", f"{path}[")
    return [1.0, float(confidence.get(path, 1.0)), float(samples > 1), scaled,
            *(float(match == m) for m in MATCHES), float(value is None),
            float(path in open_fields or any(d.startswith(f"{path}:") for d in doubts)),
            float(any(r.startswith(mine) for r in repairs)), float(truncated)]


def scored_paths(record: Any, schema: dict[str, Any]) -> list[tuple[str, Any]]:
    """The values a probability is given for: every value outside arrays (``line_items`` rows are not)."""
    return [(path, value) for path, value, _ in leaves(record, schema, schema) if "[" not in path and path]


def _weights(path: Path) -> tuple[float, ...] | None:
    return _load(path, path.stat().st_mtime_ns) if path.is_file() else None


@lru_cache(maxsize=4)
def _load(path: Path, version: int) -> tuple[float, ...] | None:
    """The weights, read once per file version (``version``: its modification time)."""
    data = json.loads(path.read_text())
    if data.get("features") != list(FEATURES):
        return None  # fitted on other signs: no probability rather than a wrong one
    return tuple(float(w) for w in data["weights"])


def probability(signs: Sequence[float], weights: Sequence[float]) -> float:
    z = sum(w * x for w, x in zip(weights, signs, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def field_probability(record: Any, schema: dict[str, Any], coefficients: Path = COEFFICIENTS,
                      **signs: Any) -> dict[str, float]:
    """Each scored value's probability of being right (empty without a fitted model for these signs)."""
    weights = _weights(coefficients)
    if weights is None or not isinstance(record, dict):
        return {}
    return {path: round(probability(features(path, value, **signs), weights), 4)
            for path, value in scored_paths(record, schema)}


def fit(rows: Sequence[Sequence[float]], labels: Sequence[bool], l2: float = 1.0,
        steps: int = 50) -> list[float]:
    """Logistic regression by Newton's method with an L2 penalty (the bias unpenalised): few
    examples and correlated signs, so the penalty keeps the weights finite and the fit stable."""
    import numpy as np

    x = np.asarray(rows, dtype=float)
    y = np.asarray(labels, dtype=float)
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty) + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return [round(float(v), 6) for v in w]


def reliability(predicted: Sequence[float], labels: Sequence[bool],
                edges: Sequence[float] = (0.0, 0.5, 0.8, 0.9, 0.95, 1.0001)) -> list[dict[str, Any]]:
    """Predicted against actual, per bin of predicted probability."""
    table = []
    for low, high in zip(edges, edges[1:], strict=False):
        inside = [(p, y) for p, y in zip(predicted, labels, strict=True) if low <= p < high]
        table.append({"bin": f"{low:.2f}-{min(high, 1.0):.2f}", "values": len(inside),
                      "predicted": round(sum(p for p, _ in inside) / len(inside), 3) if inside else None,
                      "right": round(sum(y for _, y in inside) / len(inside), 3) if inside else None})
    return table
