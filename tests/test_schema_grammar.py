"""Schema checks, the grammar fixes, and the Arrow mapping."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pytest

from pipeline.errors import SchemaError
from pipeline.schema.compiled import compile_schema, load_schema
from pipeline.schema.grammar import schema_to_gbnf, split_type_lists
from pipeline.sink.arrow import record_fields, to_arrow_value
from pipeline.sink.parquet import documents_schema, pages_schema

from .conftest import INVOICE_SCHEMA


def test_invoice_schema_compiles_and_is_2020_12() -> None:
    compiled = load_schema(INVOICE_SCHEMA)
    assert compiled.raw["$schema"].endswith("2020-12/schema")
    assert len(compiled.sha256) == 64
    props = compiled.raw["properties"]
    for name in ("invoice_number", "issue_date", "due_date", "seller", "buyer", "currency",
                 "net_amount", "tax_amount", "total_amount", "line_items"):
        assert name in props


@pytest.mark.parametrize("keyword, value", [
    ("minimum", 0), ("pattern", "^a$"), ("oneOf", [{"type": "string"}]), ("not", {"type": "null"}),
    ("uniqueItems", True), ("multipleOf", 2),
])
def test_unenforceable_keywords_are_refused_with_their_path(keyword: str, value: object) -> None:
    with pytest.raises(SchemaError, match=f"'{keyword}' at \\$.properties.a"):
        compile_schema({"type": "object", "properties": {"a": {keyword: value}}})


def test_a_pattern_is_taken_on_a_nullable_string_only() -> None:
    nullable = {"type": ["string", "null"], "pattern": "^[A-Z]{2}[0-9]+$"}
    assert compile_schema({"type": "object", "properties": {"a": nullable}})
    with pytest.raises(SchemaError, match="'pattern' at \\$.properties.a .*nullable string"):
        compile_schema({"type": "object", "properties": {"a": {"type": "string", "pattern": "^a$"}}})
    with pytest.raises(SchemaError, match="'pattern' at \\$.properties.a.anyOf\\[0\\]"):
        compile_schema({"type": "object", "properties": {"a": {"anyOf": [nullable, {"type": "integer"}]}}})
    with pytest.raises(SchemaError, match="pattern"):  # the meta-schema checks the regex first
        compile_schema({"type": "object", "properties": {"a": {**nullable, "pattern": "(["}}})


def test_unsupported_format_and_remote_ref_are_refused() -> None:
    with pytest.raises(SchemaError, match="format 'email'"):
        compile_schema({"type": "object", "properties": {"a": {"type": "string", "format": "email"}}})
    with pytest.raises(SchemaError, match="local"):
        compile_schema({"type": "object", "properties": {"a": {"$ref": "https://example.com/x.json"}}})


def test_root_must_be_an_object() -> None:
    with pytest.raises(SchemaError, match="object"):
        compile_schema({"type": "array", "items": {"type": "string"}})


def test_type_lists_keep_format_and_enum_per_branch() -> None:
    split = split_type_lists({"type": ["string", "null"], "format": "date", "description": "d"})
    assert split == {"description": "d", "anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]}
    split = split_type_lists({"type": ["string", "null"], "enum": ["EUR", None]})
    assert split["anyOf"] == [{"type": "string", "enum": ["EUR"]}, {"type": "null", "enum": [None]}]


def test_grammar_closes_the_converter_holes() -> None:
    gbnf = schema_to_gbnf(json.loads(INVOICE_SCHEMA.read_text()))
    char_rule = re.search(r"^char ::= (.*)$", gbnf, re.M)
    assert char_rule and r"\x00-\x1F" in char_rule.group(1)
    number_rule = re.search(r"^number ::= (.*)$", gbnf, re.M)
    assert number_rule and "integral-part )?" not in number_rule.group(1).split("[eE]")[1]
    assert "leap-year" in gbnf and "date-string" in gbnf
    currency = re.search(r"^currency-0 ::= (.*)$", gbnf, re.M)
    assert currency and "EUR" in currency.group(1)  # the enum survived the nullable type list


def test_arrow_types_follow_the_schema() -> None:
    fields = {f.name: f.type for f in record_fields(json.loads(INVOICE_SCHEMA.read_text()))}
    assert fields["issue_date"] == pa.date32()
    assert fields["net_amount"] == pa.float64()
    assert fields["currency"] == pa.string()
    assert fields["seller"] == pa.struct([("name", pa.string()), ("vat_id", pa.string()), ("address", pa.string())])
    assert fields["line_items"] == pa.list_(pa.struct([
        ("description", pa.string()), ("quantity", pa.float64()), ("unit_price", pa.float64()),
        ("amount", pa.float64())]))


def test_arrow_types_for_other_shapes() -> None:
    schema = {"type": "object", "properties": {
        "n": {"type": "integer"}, "b": {"type": "boolean"}, "t": {"type": "string", "format": "date-time"},
        "mixed": {"anyOf": [{"type": "string"}, {"type": "number"}]},
        "tags": {"type": "array", "items": {"type": "string"}},
    }}
    fields = {f.name: f.type for f in record_fields(schema)}
    assert fields == {"n": pa.int64(), "b": pa.bool_(), "t": pa.timestamp("us", tz="UTC"),
                      "mixed": pa.string(), "tags": pa.list_(pa.string())}
    assert to_arrow_value(3, pa.string()) == "3"
    assert to_arrow_value("2024-01-02T03:04:05Z", pa.timestamp("us", tz="UTC")).year == 2024


def test_provenance_name_clash_is_refused() -> None:
    for make in (pages_schema, documents_schema):
        with pytest.raises(SchemaError, match="'status' collides"):
            make({"type": "object", "properties": {"status": {"type": "string"}}})


def test_copy_mode_schema_lets_the_model_copy_printed_values() -> None:
    from pipeline.schema.grammar import AMOUNT_PATTERN, copy_mode_schema

    raw = json.loads(INVOICE_SCHEMA.read_text())
    copy = copy_mode_schema(raw)
    props = copy["properties"]
    assert props["total_amount"]["type"] == ["string", "null"] and props["total_amount"]["pattern"] == AMOUNT_PATTERN
    assert "format" not in props["issue_date"] and props["issue_date"]["maxLength"] == 40
    assert "enum" not in props["currency"] and props["currency"]["type"] == ["string", "null"]
    assert copy["$defs"]["line_item"]["properties"]["quantity"]["pattern"] == AMOUNT_PATTERN
    strict = copy_mode_schema({"type": "object", "properties": {"d": {"type": "string", "format": "date"}}})
    assert strict["properties"]["d"]["format"] == "date"  # not nullable: keeps the strict grammar
    assert schema_to_gbnf(copy)  # still converts


def test_totals_are_written_after_the_rows_they_add_up() -> None:
    """A small model asked for the net before the rows copies the first line's amount as the net."""
    from pipeline.model.prompt import prompt_schema, text_messages
    from pipeline.schema.grammar import answer_schema

    raw = json.loads(INVOICE_SCHEMA.read_text())
    answer = answer_schema(raw)
    assert list(answer["properties"]) == ["invoice_number", "issue_date", "due_date", "seller", "buyer", "currency",
                                          "line_items", "allowance_total", "charge_total", "net_amount", "tax_amount",
                                          "total_amount"]
    root = next(line for line in schema_to_gbnf(answer).splitlines() if line.startswith("root ::="))
    assert root.index("line-items-kv") < root.index("net-amount-kv") < root.index("total-amount-kv")
    prompt = text_messages(prompt_schema(answer), "page")[1]["content"]
    assert prompt.index('"line_items"') < prompt.index('"net_amount"')
    # the record and its columns keep the schema's own order
    assert list(compile_schema(raw).raw["properties"])[6] == "allowance_total"
    assert [f.name for f in record_fields(compile_schema(raw).raw)][6] == "allowance_total"


def test_writing_order_comes_from_the_rules_only() -> None:
    from pipeline.rules.checks import in_writing_order

    def order(props: list[str], rules: list[dict]) -> list[str]:
        return list(in_writing_order({"properties": dict.fromkeys(props, {}), "x-rules": rules})["properties"])

    rows = {"kind": "sum", "items": "rows", "field": "x", "equals": ["sub", "total"]}
    fee = {"kind": "add", "fields": ["sub", "fee"], "equals": "total"}
    assert order(["id", "total", "fee", "sub", "rows", "note"], [rows, fee]) == \
        ["id", "rows", "total", "fee", "sub", "note"]  # totals keep their order, right after the rows
    assert order(["id", "total", "rows"], []) == ["id", "total", "rows"]  # no rules: the schema's order
    assert order(["a", "b", "c"], [{"kind": "add", "fields": ["a", "b"], "equals": "c"}]) == ["a", "b", "c"]
