"""field_probability: a logistic model over a value's signs, fitted on studied documents; the
reliability table says whether its 0.9 means nine in ten."""

from __future__ import annotations

import json
import random
from pathlib import Path

from pipeline.rules.confidence import FEATURES, features, field_probability, fit, probability, reliability
from tests.conftest import INVOICE_SCHEMA

SCHEMA = json.loads(INVOICE_SCHEMA.read_text())
QUIET = {"confidence": {}, "certainty": {}, "sources": {}, "open_fields": [], "doubts": [], "repairs": [],
         "samples": 1, "truncated": False}


def test_the_signs_of_a_value_come_from_the_page_not_from_its_name() -> None:
    signs = dict(zip(FEATURES, features("issue_date", "2024-03-01", **{
        **QUIET, "confidence": {"issue_date": 0.67}, "certainty": {"issue_date": 0.01},
        "sources": {"issue_date": {"match": "normalised"}}, "doubts": ["issue_date: two orders"], "samples": 3}),
        strict=True))
    assert signs["agreement"] == 0.67 and signs["voted"] == 1.0 and signs["in_doubt"] == 1.0
    assert signs["certainty"] == 0.5 and signs["match_normalised"] == 1.0 and signs["match_exact"] == 0.0
    other = dict(zip(FEATURES, features("invoice_number", None, **QUIET), strict=True))
    assert other["null"] == 1.0 and other["certainty"] == 1.0 and other["agreement"] == 1.0 and other["in_doubt"] == 0.0
    repaired = dict(zip(FEATURES, features("seller", None, **{**QUIET, "repairs": ["seller.name: A -> B"]}),
                        strict=True))
    assert repaired["repaired"] == 1.0  # a repair inside the object counts for it


def test_a_fit_is_calibrated_on_values_like_those_it_was_fitted_on(tmp_path: Path) -> None:
    rng = random.Random(7)
    rows, labels = [], []
    for _ in range(2000):  # printed values are right 95 % of the time, values printed nowhere 40 %
        printed = rng.random() < 0.7
        row = [1.0, 1.0, 0.0, 1.0, float(printed), 0.0, 0.0, float(not printed), 0.0, 0.0, 0.0, 0.0]
        rows.append(row)
        labels.append(rng.random() < (0.95 if printed else 0.4))
    weights = fit(rows, labels, l2=0.1)
    assert abs(probability(rows[0], weights) - (0.95 if rows[0][4] else 0.4)) < 0.05
    table = reliability([probability(r, weights) for r in rows], labels)
    assert sum(b["values"] for b in table) == 2000
    for b in table:
        if b["values"] > 100:
            assert abs(b["predicted"] - b["right"]) < 0.05, b

    coefficients = tmp_path / "calibration.json"
    assert field_probability({"invoice_number": "A-1"}, SCHEMA, coefficients, **QUIET) == {}  # no fit: no figure
    coefficients.write_text(json.dumps({"features": list(FEATURES), "weights": weights}))
    found = field_probability({"invoice_number": "A-1", "seller": {"name": "ACME"}, "line_items": [{"amount": 1}]},
                              SCHEMA, coefficients, **{**QUIET, "sources": {"invoice_number": {"match": "exact"}}})
    assert set(found) == {"invoice_number", "seller.name"}  # rows are not scored
    assert found["invoice_number"] > 0.9 > found["seller.name"]
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"features": ["bias"], "weights": [3.0]}))
    assert field_probability({"invoice_number": "A-1"}, SCHEMA, other, **QUIET) == {}  # fitted on other signs
