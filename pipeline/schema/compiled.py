"""Loading, checking and validating the user's JSON Schema.

The schema is the contract of a run: the grammar that constrains the model, the validator
that checks every answer, and the Arrow types of the Parquet columns all derive from it.  So
it is checked once, at start-up, before any page is read: a schema that is not valid JSON
Schema, or that uses a keyword our grammar cannot enforce, is refused with a one-line error
instead of producing pages that fail one by one in the night.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError as JsonSchemaError

from pipeline.errors import SchemaError
from pipeline.schema.paths import KIND_TABLES, kind_paths, x_labels

# Keywords that only annotate: they never constrain a value.
ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$anchor", "title", "description", "examples", "default",
     "deprecated", "readOnly", "writeOnly"}
)
# Keywords the grammar enforces exactly, so every constrained answer also validates.
ENFORCED = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
     "enum", "const", "anyOf", "$ref", "$defs", "format", "minLength", "maxLength"}
)
SUPPORTED_FORMATS = frozenset({"date", "date-time", "time", "uuid"})


@dataclass(frozen=True)
class CompiledSchema:
    """A checked schema plus what every stage derives from it, computed once."""

    raw: dict[str, Any]
    sha256: str
    path: str
    _validator: Draft202012Validator = field(repr=False, compare=False)

    def errors(self, value: Any) -> list[str]:
        """All validation problems of ``value``, as short ``path: message`` lines."""
        problems = [f"{_json_path(e.absolute_path)}: {e.message}"
                    for e in self._validator.iter_errors(value)]
        problems.extend(f"{p}: number is not finite" for p in _non_finite(value, "$"))
        return problems

    def drop_restated_rows(self, record: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """``record`` without the rows the rules prove to be restated totals (``rules.checks``), as
        long as it still validates (a ``minItems`` must not turn a good answer into a bad one), and
        how many rows went (recorded as ``dropped_rows``: never silent)."""
        from pipeline.rules.checks import drop_restated_totals

        kept = drop_restated_totals(self.raw.get("x-rules", []), record)
        if kept is record or self.errors(kept):
            return record, 0
        dropped = sum(len(v) - len(kept.get(k) or []) for k, v in record.items() if isinstance(v, list))
        return kept, dropped


def load_schema(spec: str | Path) -> CompiledSchema:
    """Read, check and compile the schema; raise ``SchemaError`` with one line.

    ``spec`` is a JSON Schema file, or ``package.module:ClassName`` naming a pydantic model (the
    convention of Instructor and friends), whose JSON Schema then goes through the same checks.
    """
    p = Path(spec)
    if not p.is_file() and _MODEL_SPEC.fullmatch(str(spec)):
        return compile_schema(_pydantic_schema(str(spec)), str(spec))
    if not p.is_file():
        raise SchemaError(f"schema file not found: {p} (or name a pydantic model as package.module:ClassName)")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError(f"schema {p} is not valid JSON: {exc}") from None
    return compile_schema(raw, str(p))


_MODEL_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def _pydantic_schema(spec: str) -> dict[str, Any]:
    """The JSON Schema of the pydantic model named ``module:Class`` (2020-12, as pydantic writes it)."""
    import importlib
    import sys

    module_name, _, class_name = spec.partition(":")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # a model in the user's own folder, as 'python -m' would find it
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import error of the user's module is their mistake, reported in one line
        raise SchemaError(f"cannot import {module_name} for schema {spec}: {type(exc).__name__}: {exc}") from None
    model = getattr(module, class_name, None)
    schema_of = getattr(model, "model_json_schema", None)
    if not isinstance(model, type) or schema_of is None:
        raise SchemaError(f"schema {spec}: {class_name} is not a pydantic model class in {module_name}")
    try:
        raw: dict[str, Any] = schema_of()
    except Exception as exc:
        raise SchemaError(f"schema {spec}: pydantic cannot write its JSON Schema: {exc}") from None
    return raw


def compile_schema(raw: Any, origin: str = "<schema>") -> CompiledSchema:
    if not isinstance(raw, dict):
        raise SchemaError(f"schema {origin} must be a JSON object")
    try:
        Draft202012Validator.check_schema(raw)
    except JsonSchemaError as exc:
        raise SchemaError(
            f"schema {origin} is not a valid JSON Schema at {_json_path(exc.absolute_path)}: "
            f"{exc.message}") from None
    if raw.get("type") != "object" or not isinstance(raw.get("properties"), dict):
        raise SchemaError(f"schema {origin} must describe an object with 'properties' at its root")
    check_enforceable(raw, origin)
    from pipeline.rules.checks import check_rules
    from pipeline.screen.kinds import schema_kinds

    check_rules(raw)
    schema_kinds(raw)
    for where, node in _walk(raw, "$"):
        x_labels(node, where)
        if "x-identifier" in node and node["x-identifier"] not in IDENTIFIERS:
            raise SchemaError(f"x-identifier at {where} must be one of {', '.join(IDENTIFIERS)}; "
                              f"got {node['x-identifier']!r}")
    for key in KIND_TABLES:
        kind_paths(raw, key)
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    validator = Draft202012Validator(raw, format_checker=FormatChecker())
    return CompiledSchema(raw=raw, sha256=hashlib.sha256(canonical.encode()).hexdigest(),
                          path=origin, _validator=validator)


def check_enforceable(schema: dict[str, Any], origin: str) -> None:
    """Refuse keywords the grammar cannot enforce; name the first one and where it is."""
    for where, node in _walk(schema, "$"):
        for key, value in node.items():
            if key in ANNOTATIONS or key.startswith("x-"):
                continue
            if key == "pattern":
                _check_pattern(node, where, origin)
                continue
            if key not in ENFORCED:
                raise SchemaError(
                    f"schema {origin}: keyword '{key}' at {where} cannot be enforced by the "
                    f"output grammar; remove it (supported: {', '.join(sorted(ENFORCED))})")
            if key == "format" and value not in SUPPORTED_FORMATS:
                raise SchemaError(
                    f"schema {origin}: format '{value}' at {where} is not supported "
                    f"(supported: {', '.join(sorted(SUPPORTED_FORMATS))})")
            if key == "$ref" and not (isinstance(value, str) and value.startswith("#/")):
                raise SchemaError(f"schema {origin}: only local '#/...' $ref is supported, "
                                  f"got {value!r} at {where}")
            if key == "items" and not isinstance(value, dict):
                raise SchemaError(f"schema {origin}: 'items' at {where} must be a schema object")
            if key == "additionalProperties" and value is not False and node.get("properties") is None:
                raise SchemaError(f"schema {origin}: an open object at {where} needs 'properties'")
        if node.get("type") == "object" and "properties" not in node:
            raise SchemaError(f"schema {origin}: object at {where} needs 'properties'")


def _check_pattern(node: dict[str, Any], where: str, origin: str) -> None:
    """A ``pattern`` is checked once the value is read, not by the grammar: a nullable string that
    does not match becomes null (``consensus.normalize``), where the grammar would force the model
    to write *some* matching text.  So only a nullable string, outside ``anyOf``, may have one (the
    meta-schema has already checked that it is a regular expression)."""
    types = node.get("type")
    if not (isinstance(types, list) and "string" in types and "null" in types) or ".anyOf[" in where:
        raise SchemaError(f"schema {origin}: keyword 'pattern' at {where} cannot be enforced by the output "
                          "grammar; it is supported on a nullable string (type [\"string\", \"null\"]) only, "
                          "where a value that does not match is read as null")


PROGRAM_KEYWORDS = ("x-einvoice", "x-ground", "x-party", "x-expected", "x-kind-fields", "x-labels", "x-identifier")
IDENTIFIERS = ("vat",)  # "x-identifier": what kind of identifier a field holds (rules.evidence.vat_doubts)


def for_models(schema: Any) -> Any:
    """The schema without the keywords that tell ``extract`` where to find values or what to doubt
    (``x-einvoice...``, ``x-ground``, ``x-party``, ``x-expected``, ``x-kind-fields``, ``x-labels``,
    ``x-identifier``): a model does not need them, and the prompt stays as it was for schemas without them."""
    if isinstance(schema, dict):
        return {k: for_models(v) for k, v in schema.items() if not k.startswith(PROGRAM_KEYWORDS)}
    if isinstance(schema, list):
        return [for_models(v) for v in schema]
    return schema


def _walk(node: Any, where: str) -> Any:
    """Yield (json path, subschema) for every subschema."""
    if not isinstance(node, dict):
        return
    yield where, node
    for key in ("properties", "$defs"):
        for name, sub in (node.get(key) or {}).items():
            yield from _walk(sub, f"{where}.{key}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{where}.items")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{where}.additionalProperties")
    for i, sub in enumerate(node.get("anyOf") or []):
        yield from _walk(sub, f"{where}.anyOf[{i}]")


def _json_path(parts: Any) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _non_finite(value: Any, where: str) -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [where]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{where}[{i}]")]
    return []
