"""JSON Schema -> GBNF grammar for llama.cpp, with the converter's known holes closed.

llama-cpp-python ships a converter, but as-is it (1) lets strings contain raw control
characters, which is invalid JSON; (2) lets exponents run to thousands of digits, which
parse to ``inf``; (3) accepts impossible dates such as 2023-02-31; and (4) drops ``format``
and ``enum`` when ``type`` is a list such as ``["string", "null"]``.  We keep its converter
and fix those four things here, so a constrained answer is always JSON that validates.
"""

from __future__ import annotations

import copy
from typing import Any

from pipeline.errors import SchemaError
from pipeline.rules.checks import in_writing_order
from pipeline.schema.compiled import for_models
from pipeline.schema.paths import has_type, resolve_ref, types_of

# Any character but quote, backslash and control characters, or a JSON escape.
_CHAR = (r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] '
         r'[0-9a-fA-F] [0-9a-fA-F])')
# At most two exponent digits: every value stays a finite float.
_NUMBER = ('("-"? integral-part) ("." decimal-part)? ([eE] [-+]? [0-9] [0-9]?)? space')
# Real calendar dates from 1000-01-01 to 9999-12-31, leap years by the Gregorian rule.
_DATE = (
    '( year "-" ( ( "0" [13578] | "1" [02] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) '
    '| ( "0" [469] | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) '
    '| "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ) ) ) '
    '| leap-year "-02-29"'
)
_EXTRA_RULES = {
    "year": '[1-9] [0-9] [0-9] [0-9]',
    "leap-year": ('[1-9] [0-9] ( "0" [48] | [2468] [048] | [13579] [26] ) '
                  '| ( [2468] [048] | [13579] [26] ) "00"'),
}

_LITERAL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\r": "\\r", "\n": "\\n", "\t": "\\t"}

_TYPE_KEYWORDS = {
    "string": {"format", "minLength", "maxLength"},
    "array": {"items", "minItems", "maxItems"},
    "object": {"properties", "required", "additionalProperties"},
}


def _map_children(schema: dict[str, Any], fn: Any) -> dict[str, Any]:
    """A copy of ``schema`` with ``fn`` applied to each direct subschema."""
    out = dict(schema)
    for key in ("properties", "$defs"):
        if key in out:
            out[key] = {name: fn(sub) for name, sub in out[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = fn(out[key])
    if "anyOf" in out:
        out["anyOf"] = [fn(sub) for sub in out["anyOf"]]
    return out


def split_type_lists(schema: Any) -> Any:
    """Rewrite ``{"type": [a, b], ...}`` as ``anyOf`` branches that keep their own keywords."""
    if not isinstance(schema, dict):
        return schema
    out = _map_children(schema, split_type_lists)
    types = out.get("type")
    if not isinstance(types, list):
        return out
    branches = []
    for t in types:
        branch: dict[str, Any] = {"type": t}
        branch.update({k: v for k, v in out.items() if k in _TYPE_KEYWORDS.get(t, set())})
        if "enum" in out:
            values = [v for v in out["enum"] if _is_type(v, t)]
            if not values:
                continue
            branch["enum"] = values
        if "const" in out:
            if not _is_type(out["const"], t):
                continue
            branch["const"] = out["const"]
        branches.append(branch)
    rest = {k: v for k, v in out.items()
            if k not in {"type", "enum", "const"} and not any(k in kw for kw in _TYPE_KEYWORDS.values())}
    rest["anyOf"] = branches
    return rest


# What the model may write where the schema wants a number: the amount as printed
# ("1.234,56 €", "(12.00)", "CHF 1'234.50"); it is normalised to a number afterwards.
AMOUNT_PATTERN = r"^[-+(€$£A-Za-z. ]{0,6}[0-9][0-9.,' ]{0,24}[-)€$£A-Za-z. ]{0,6}$"
INTEGER_PATTERN = r"^-?[0-9]{1,15}$"


def answer_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema a model answers in: values as printed (``copy_mode_schema``), totals after
    the rows they add up (``in_writing_order``)."""
    return copy_mode_schema(in_writing_order(for_models(schema)))  # type: ignore[no-any-return]


def copy_mode_schema(schema: Any) -> Any:
    """The schema the model answers in: values copied as printed, typed by normalisation later.

    Small models copy text well and convert formats badly ("14.04.2025" forced into an ISO
    grammar becomes "1404-04-20").  So numbers become strings of amount characters, and
    *nullable* dates and enums become short free strings, and nullable strings lose their
    ``pattern``; ``normalize_record`` then turns them into numbers, ISO dates and enum members,
    and nulls a string that does not match its pattern (a postcode and town copied as a VAT id),
    before validation against the real schema.  Forced into the pattern, a model writes *some*
    matching string (the postcode without the town) instead of null; so a pattern is taken on
    nullable strings only (``schema.compiled``).  Non-nullable dates and enums keep their strict
    grammar: a value that could not be normalised would have nowhere to go.  Branches of an ``anyOf`` stay strict too:
    normalisation cannot tell which branch a copied string was meant for.
    """
    if not isinstance(schema, dict):
        return schema
    out = _map_children({k: v for k, v in schema.items() if k != "anyOf"}, copy_mode_schema)
    if "anyOf" in schema:
        out["anyOf"] = schema["anyOf"]
    type_list = types_of(out)
    nullable = "null" in type_list or None in (out.get("enum") or [])
    if "number" in type_list or "integer" in type_list:
        pattern = INTEGER_PATTERN if "number" not in type_list else AMOUNT_PATTERN
        rest = [t for t in type_list if t not in ("number", "integer", "string")]
        out["type"] = ["string", *rest] if rest else "string"
        out["pattern"] = pattern
        out.pop("enum", None)
    elif nullable and out.get("format") in ("date", "date-time") and "string" in type_list:
        out.pop("format")
        out["maxLength"] = min(int(out.get("maxLength", 40)), 40)
    elif nullable and "enum" in out and all(isinstance(v, str) or v is None for v in out["enum"]):
        out.pop("enum")
        out["type"] = ["string", "null"]
        out["maxLength"] = 24
    elif nullable and "pattern" in out and "string" in type_list:
        out.pop("pattern")  # checked after copying: a value that does not match is nulled, with a trace
    return out


PRINTED_DEF = "printed-amount"


def printed_schema(answer: dict[str, Any], schema: dict[str, Any], amounts: list[str]) -> dict[str, Any]:
    """``answer`` (the answer schema of ``schema``) with every amount copied from the page limited to
    ``amounts``, the numbers the page prints (or null where the field may be null): every number
    field but those ``schema`` marks ``"x-ground": false`` (the model derives them).  One shared
    definition, so the grammar holds the page's numbers once."""
    def limit(node: Any, raw: Any) -> Any:
        if not isinstance(node, dict):
            return node
        raw = raw if isinstance(raw, dict) else {}
        if node.get("pattern") == AMOUNT_PATTERN and raw.get("x-ground") is not False:
            ref = {"$ref": f"#/$defs/{PRINTED_DEF}"}
            return {"anyOf": [ref, {"type": "null"}]} if has_type(node, "null") else ref
        out = dict(node)
        for key in ("properties", "$defs"):
            if isinstance(node.get(key), dict):
                out[key] = {k: limit(v, (raw.get(key) or {}).get(k)) for k, v in node[key].items()}
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                out[key] = limit(node[key], raw.get(key))
        if isinstance(node.get("anyOf"), list):
            branches = raw.get("anyOf") if isinstance(raw.get("anyOf"), list) else []
            out["anyOf"] = [limit(b, branches[i] if i < len(branches) else None) for i, b in enumerate(node["anyOf"])]
        return out

    limited = limit(copy.deepcopy(answer), schema)
    limited["$defs"] = {**limited.get("$defs", {}), PRINTED_DEF: {"type": "string", "enum": list(amounts)}}
    return limited  # type: ignore[no-any-return]


def kind_schema(answer: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """``answer`` narrowed to ``fields``, the paths a page's kind has (``x-kind-fields``): every other
    value that may be null (or an empty list, or an object of such values) is left out of the answer,
    and the record gets it as null (``model.salvage.with_missing_nulls``).

    A receipt has no buyer, no due date and no rows a record is kept for; asked for them, a model
    retypes a dozen till lines that no rule checks (most of a receipt's answer tokens).  Left in the
    answer as forced nulls they cost a decoding step a token, and a small model that has written four
    nulls in a row writes a fifth for the total.  Narrowing the grammar, not the prompt, keeps the
    instruction the worker has cached."""
    def listed(path: str) -> bool:
        return any(path == f or path.startswith((f"{f}.", f"{f}[")) for f in fields)

    def under(path: str) -> bool:
        return any(f.startswith((f"{path}.", f"{path}[")) for f in fields)

    def narrow(node: dict[str, Any], path: str) -> dict[str, Any] | None:
        if path and listed(path):
            return node
        node = resolve_ref(node, answer)
        props = node.get("properties")
        if isinstance(props, dict):
            kept = {k: v for k, v in ((k, narrow(v, f"{path}.{k}" if path else k)) for k, v in props.items())
                    if v is not None}
            if kept or not path:
                return {**node, "properties": kept, "required": [k for k in node.get("required", []) if k in kept]}
        elif path and under(path):  # some of the rows' fields are listed: the rows are read whole
            return node
        empty = has_type(node, "null") or (has_type(node, "array") and not node.get("minItems")) or \
            isinstance(props, dict) or any(b.get("type") == "null" for b in node.get("anyOf", []))
        return None if empty else node  # a value that cannot be null or empty: the model still writes it

    return narrow(copy.deepcopy(answer), "") or answer


def _is_type(value: Any, t: str) -> bool:
    checks = {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
    }
    return checks.get(t, False)


def schema_to_gbnf(schema: dict[str, Any]) -> str:
    """Convert a checked schema to GBNF; raise ``SchemaError`` if the converter cannot."""
    from llama_cpp import llama_grammar as lg

    fixed = {id(lg.PRIMITIVE_RULES["char"]): lg.BuiltinRule(_CHAR, []),
             id(lg.PRIMITIVE_RULES["number"]): lg.BuiltinRule(_NUMBER, ["integral-part", "decimal-part"]),
             id(lg.STRING_FORMAT_RULES["date"]): lg.BuiltinRule(_DATE, [])}

    class _Converter(lg.SchemaConverter):  # type: ignore[misc]
        def _add_primitive(self, name: str, rule: Any) -> str:
            return str(super()._add_primitive(name, fixed.get(id(rule), rule)))

        def _format_literal(self, literal: str) -> str:
            # Upstream leaves backslashes unescaped, so a JSON "\u001f" in an enum or const
            # becomes a raw control character in the grammar's output.
            return '"' + "".join(_LITERAL_ESCAPES.get(c, c) for c in literal) + '"'

    converter = _Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    try:
        resolved = converter.resolve_refs(split_type_lists(copy.deepcopy(schema)), "schema")
        converter.visit(resolved, "")
    except (AssertionError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise SchemaError(f"schema cannot be turned into an output grammar: {exc or type(exc).__name__}") from None
    text = str(converter.format_grammar())
    if "date ::=" in text:
        text += "".join(f"\n{name} ::= {rule}" for name, rule in _EXTRA_RULES.items())
    return text

