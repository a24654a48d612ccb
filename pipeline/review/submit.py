"""A submitted review form -> the ``corrections`` rows it stands for, or why it is refused.

The old value is always the record as the server showed it (the machine's, with earlier reviews
applied), never what the browser sends back; a field counts as corrected only when the typed
value differs from it as the field's type compares values (``12,50`` for ``12.5`` is no
correction), and the corrected record must still be valid for the schema, so the reviewed view
can never hold what the schema forbids.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.consensus.compare import same
from pipeline.review.fields import (
    ValueRefused,
    drop_empty_rows,
    form_fields,
    get_path,
    parse_value,
    set_path,
)
from pipeline.schema.compiled import CompiledSchema
from pipeline.schema.paths import node_at

FIELD_PREFIX = "f:"


def review_rows(row: dict[str, Any], record: dict[str, Any], compiled: CompiledSchema | None,
                form: dict[str, str], review_id: str, reviewer: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(rows to commit, problems by field path); rows is empty when there are problems.  ``record``
    is what the form showed: the machine's, with earlier reviews applied."""
    schema = compiled.raw if compiled else None
    fields = form_fields(record, schema)
    known = {f.path for f in fields}
    problems: dict[str, str] = {}
    changes: list[tuple[str, Any, Any]] = []
    edited = dict(record)
    for f in fields:  # a failed page's record is null throughout: give its objects their (empty) fields
        if f.row is None:
            edited = set_path(edited, f.path, f.value)
        elif get_path(edited, f.path[:f.path.rindex("[")]) is None:
            edited = set_path(edited, f.path[:f.path.rindex("[")], [])
    for name, text in form.items():
        if not name.startswith(FIELD_PREFIX):
            continue
        path = name[len(FIELD_PREFIX):]
        if path not in known:
            problems[path] = "not a field of this document's form"
            continue
        node = node_at(schema, path)
        try:
            value = parse_value(text, node, schema)
        except ValueRefused as exc:
            problems[path] = str(exc)
            continue
        old = get_path(record, path)
        if old is None and value is None or None not in (old, value) and same(old, value, node, schema):
            continue
        changes.append((path, old, value))
        edited = set_path(edited, path, value)
    if not problems and compiled is not None:
        errors = compiled.errors(drop_empty_rows(edited))
        if errors:
            problems["record"] = errors[0]
    if problems:
        return [], problems
    base = {"review_id": review_id, "source_sha256": row["source_sha256"], "source_path": row["source_path"],
            "run_id": row.get("run_id"), "reviewer": reviewer}
    rows = [{**base, "action": "correct", "field_path": path, "old_value": _json(old), "new_value": _json(new)}
            for path, old, new in changes]
    return [*rows, {**base, "action": "approve", "field_path": None, "old_value": None, "new_value": None}], {}


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)
