"""``--amounts printed``: an amount field may take only a number the page prints (or null).

Real llama.cpp: the tiny random-weight model writes noise, so whatever it picks under the page's
grammar shows what the grammar allows; the 0.5B shows that a real model still reads the values.
"""

from __future__ import annotations

import json

import pytest

from pipeline.config.settings import ModelConfig
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.model import registry as models
from pipeline.model.base import Completion, PageInput
from pipeline.model.llama import LlamaTextBackend
from pipeline.model.preflight import grammar_of
from pipeline.model.printed import printed_amounts
from pipeline.schema.compiled import compile_schema
from pipeline.schema.grammar import printed_schema, schema_to_gbnf

from .conftest import INVOICE_SCHEMA

PAGE = """ACME GmbH                                  Rechnung Nr. RE-2026-0042
Datum: 03.02.2026

Pos  Beschreibung           Menge   Einzelpreis      Betrag
1    Beratung                   3      1.200,00    3.600,00
2    Reisekosten                1        412,50      412,50

                                  Netto             4.012,50 €
                                  MwSt 19 %           762,38 €
                                  Gesamt            4.774,88 €
"""


def test_the_numbers_a_page_prints_are_read_as_printed() -> None:
    found = printed_amounts(PAGE + "\nCHF 1'234.50   1 234,56   12.00-   (5.00)   Tel 0171 2345678  16.80S  RM64.50")
    for printed in ("3.600,00", "412,50", "4.774,88", "1'234.50", "1 234,56", "12.00-", "(5.00)", "3", "19",
                    "16.80", "64.50"):  # a tax code or a currency stuck to the number is not part of it
        assert printed in found, printed
    assert "03.02.2026" not in found and "2026" not in found and "16" not in found  # nor a date or a part of one
    assert "0171" not in printed_amounts("Tel 0171 2345678") and not printed_amounts("Beleg 000119910400")
    french, pounds = printed_amounts("Total HT 2\u202f217,42 €"), printed_amounts("Subtotal -£5,773.35")
    assert "2\u202f217,42" in french and "217,42" not in french  # a thin space groups thousands: one number
    assert pounds == ["-5,773.35", "-£5,773.35"]  # the bare number, and the word as printed
    assert len(found) == len(set(found))


def test_only_the_amount_fields_are_limited() -> None:
    schema = json.loads(INVOICE_SCHEMA.read_text())
    answer, free = grammar_of(schema)
    limited = schema_to_gbnf(printed_schema(answer, schema, ["4.774,88", "762,38"]))
    assert 'printed-amount ::= "\\"4.774,88\\"" | "\\"762,38\\""' in limited
    for field in ("net-amount-0", "tax-amount-0", "total-amount-0", "line-item-amount-0", "line-item-quantity-0"):
        assert f"{field} ::= printed-amount" in limited
    assert "printed-amount" not in free
    derived = {**schema, "properties": {**schema["properties"],
                                        "net_amount": {**schema["properties"]["net_amount"], "x-ground": False}}}
    answer, _ = grammar_of(derived)
    assert "net-amount-0 ::= printed-amount" not in schema_to_gbnf(printed_schema(answer, derived, ["1"]))


def _backend(path: object, amounts: str, schema: dict | None = None, **extra: object) -> LlamaTextBackend:
    cfg = ModelConfig(path=path, n_ctx=4096, max_tokens=600, retries=0, amounts=amounts, **extra)  # type: ignore[arg-type]
    return LlamaTextBackend(cfg, compile_schema(schema or json.loads(INVOICE_SCHEMA.read_text())), "0" * 64)


AMOUNTS_ONLY = {"type": "object", "additionalProperties": False, "required": ["net", "total", "rows"], "properties": {
    "net": {"type": ["number", "null"]}, "total": {"type": ["number", "null"]},
    "rows": {"type": "array", "maxItems": 4, "items": {"type": "number"}}}}


def test_noise_can_only_choose_printed_numbers(tiny_vlm: TinyVLM) -> None:
    allowed = set(printed_amounts(PAGE))
    for amounts in ("printed", "free"):
        backend = _backend(tiny_vlm.model, amounts, AMOUNTS_ONLY, temperature=1.0)
        try:
            chosen: list[str] = []
            for attempt in range(4):
                answer = json.loads(backend.execute(PageInput("x.pdf", 1, b"", PAGE), attempt).text)
                chosen += [v for v in [answer["net"], answer["total"], *answer["rows"]] if v is not None]
        finally:
            backend.close()
        if amounts == "printed":
            assert chosen and set(chosen) <= allowed, set(chosen) - allowed
        else:  # the same noise, free: it writes amounts the page does not print
            assert set(chosen) - allowed


@pytest.mark.realmodel
def test_a_real_model_still_reads_the_amounts() -> None:
    if models.installed("qwen2.5-coder-0.5b") is None:
        pytest.skip("qwen2.5-coder-0.5b is not installed")
    backend = _backend(models.model_path("qwen2.5-coder-0.5b"), "printed")
    try:
        result = backend.extract(PageInput("x.pdf", 1, b"", PAGE))
    finally:
        backend.close()
    assert result.record is not None
    assert (result.record["net_amount"], result.record["tax_amount"], result.record["total_amount"]) == \
        (4012.5, 762.38, 4774.88)


def test_a_kind_is_asked_for_its_own_fields_only() -> None:
    """``x-kind-fields``: a receipt's grammar lets every other value be null only (no rows, no buyer)."""
    schema = json.loads(INVOICE_SCHEMA.read_text())
    full, gbnf = grammar_of(schema)
    assert grammar_of(schema, "invoice") == (full, gbnf)  # a kind without an entry has every field
    receipt, narrowed = grammar_of(schema, "receipt")
    props = receipt["properties"]
    assert list(props) == ["issue_date", "seller", "currency", "net_amount", "tax_amount", "total_amount"]  # no rows
    assert receipt["required"] == list(props)
    assert props["issue_date"] == full["properties"]["issue_date"]
    assert props["total_amount"] == full["properties"]["total_amount"]
    assert list(props["seller"]["properties"]) == ["name", "address"] == props["seller"]["required"]
    assert len(narrowed) < len(gbnf)
    listed = {**schema, "x-kind-fields": {"receipt": ["line_items", "total_amount"]}}
    rows = grammar_of(listed, "receipt")[0]["properties"]
    assert rows == {k: full["properties"][k] for k in ("line_items", "total_amount")}
    one_row = {**schema, "properties": {**schema["properties"], "line_items": {
        **schema["properties"]["line_items"], "minItems": 1}}}
    assert "line_items" in grammar_of(one_row, "receipt")[0]["properties"]  # rows it cannot leave empty: asked for


KINDS = {"type": "object", "additionalProperties": False, "required": ["number", "seller", "rows", "total"],
         "x-kind-fields": {"receipt": ["seller.name", "total"]}, "properties": {
             "number": {"type": ["string", "null"], "maxLength": 12},
             "seller": {"type": "object", "additionalProperties": False, "required": ["name", "vat_id"], "properties": {
                 "name": {"type": ["string", "null"], "maxLength": 12},
                 "vat_id": {"type": ["string", "null"], "maxLength": 12}}},
             "rows": {"type": "array", "maxItems": 4, "items": {"type": "number"}},
             "total": {"type": ["number", "null"]}}}


def test_noise_on_a_receipt_writes_nothing_a_receipt_lacks(tiny_vlm: TinyVLM) -> None:
    """Real llama.cpp, temperature 1: under the receipt's grammar the noise fills the receipt's fields
    at most; the same noise on an invoice page writes numbers, VAT ids and rows."""
    backend = _backend(tiny_vlm.model, "printed", KINDS, temperature=1.0)
    seen: dict[str, list[dict]] = {"receipt": [], "invoice": []}
    try:
        for kind in seen:
            for attempt in range(3):
                page = PageInput("x.pdf", 1, b"", PAGE, kinds=(kind,))
                seen[kind].append(json.loads(backend.execute(page, attempt).text))
    finally:
        backend.close()
    for answer in seen["receipt"]:
        assert set(answer) == {"seller", "total"} and set(answer["seller"]) == {"name"}
    assert all(set(a) == {"number", "seller", "rows", "total"} for a in seen["invoice"])
    record = backend._check(Completion(json.dumps(seen["receipt"][0])))[0]  # the record has every field
    assert record is not None and record["rows"] == [] and record["number"] is None
    assert record["seller"] == {"name": seen["receipt"][0]["seller"]["name"], "vat_id": None}
