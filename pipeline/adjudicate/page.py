"""Deciding whether a page goes to the adjudicator, and asking it."""

from __future__ import annotations

import json
from typing import Any

from pipeline.adjudicate.base import AdjudicationRequest, Adjudicator
from pipeline.model.base import ModelResult
from pipeline.results import PAGES_READ
from pipeline.rules.checks import flagged_failures, scoped
from pipeline.rules.expected import kind_rules
from pipeline.schema.scope import covers_document
from pipeline.screen.read import PageInput


def adjudicate_page(adjudicator: Adjudicator | None, rules: list[dict[str, Any]], task: dict[str, Any],
                    page: PageInput, result: ModelResult, open_fields: list[str], always: bool,
                    below: float) -> dict[str, Any]:
    """Send the page to the API when the local answer is unsure; returns the result's adjudication fields.

    Unsure: the local model failed, a field that matters on this page (``open_fields``, see
    ``open_disputes``) has a sample agreement below ``below``, or a business rule fails.
    """
    if adjudicator is None:
        return {}
    # A page of a longer invoice need not add up (its totals may be on another page), but its
    # own rows, dates and codes must still hold: only sums and additions wait for the document.
    # (a request that read every page of the document, --read-pages, is the whole document)
    whole = covers_document(int(task["page_number"]), task["page_count"], int(task.get(PAGES_READ) or 1))
    page_rules = kind_rules(scoped(rules, whole), adjudicator.schema.raw, page.kinds[0] if page.kinds else None)
    failures = flagged_failures(page_rules, result.record) if result.record else []
    # every open field is unsure: disputed by the samples, printed nowhere on the page
    # (pipeline.ground), or in doubt for a reason of its own (rules.settle)
    unsure = list(open_fields)
    why = (["local_error"] if result.status != "ok" else []) + \
          ([f"disputed: {','.join(unsure[:12])}"] if unsure else []) + \
          ([f"rules: {','.join(failures)}"] if failures else [])
    if not why and always:
        why = ["always"]
    if not why:
        return {}
    request = AdjudicationRequest(
        page_sha256=f"{task['source_sha256']}:{task['page_number']}", png=page.png, text=page.text,
        schema=adjudicator.schema.raw, candidates=result.candidates, disputed=result.disputed,
        rule_failures=failures, withheld=len(page.quarantined))
    outcome = adjudicator.adjudicate(request)
    fields: dict[str, Any] = {
        "adjudicated": outcome.adjudicated, "adjudicator_model": adjudicator.model,
        "adjudication_reason": f"{'; '.join(why)} -> {outcome.reason}",
        "api_input_tokens": outcome.input_tokens, "api_output_tokens": outcome.output_tokens,
        "api_cost_usd": round(outcome.cost_usd, 6),
        # batch mode: the driver sends it with the others after the local pass
        "batch_request": json.dumps(outcome.deferred) if outcome.deferred else None}
    if outcome.adjudicated:
        fields.update(record=outcome.record, status="ok", error=None)
    return fields
