"""Nightly adjudication through Anthropic's Message Batches API (half price, minutes to hours).

In batch mode the workers do not call the API: a page that needs adjudication comes back with
its request (``DeferredAdjudicator``), the driver keeps its document out of the output, and at
the end of the local pass it sends all of them as one batch (``custom_id`` per page), polls
until the batch has ended, checks each answer exactly like a synchronous one, and only then
commits those documents.  Answers go to the same response cache, and the batch id with its
``custom_id`` -> cache key map is kept in ``OUT/_state/batches/`` until its results are in the
cache: a run killed while waiting picks the finished batch up at its next start instead of
paying again.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.adjudicate.api import AnthropicAdjudicator
from pipeline.adjudicate.base import AdjudicationRequest, AdjudicationResult, Adjudicator, Answer, cost_usd
from pipeline.config.settings import RunConfig
from pipeline.results import PageResult
from pipeline.sink.state import STATE_DIR

BATCH_DISCOUNT = 0.5  # Message Batches cost half the synchronous price
PENDING = "batch_pending"
log = logging.getLogger(__name__)


@dataclass
class DeferredAdjudicator(Adjudicator):
    """Worker side: answers from the cache, otherwise hands the request back to the driver."""

    inner: AnthropicAdjudicator | None = None

    def call(self, request: AdjudicationRequest) -> Answer:  # pragma: no cover - never called
        raise NotImplementedError("batch mode sends requests from the driver")

    def adjudicate(self, request: AdjudicationRequest) -> AdjudicationResult:
        key = request.cache_key(self.model)
        hit = self.cached(key)
        if hit is not None:
            return hit
        assert self.inner is not None
        params = self.inner.params(request)
        worst = self.worst_case_usd(request) * BATCH_DISCOUNT
        return AdjudicationResult(False, None, PENDING, self.model,
                                  deferred={"cache_key": key, "params": params, "worst_case_usd": worst})


class BatchRunner:
    """Driver side: collect deferred requests, send one batch, wait, check, cache."""

    def __init__(self, adjudicator: AnthropicAdjudicator, state_dir: Path, run_id: str,
                 poll_s: float, timeout_s: float) -> None:
        self.adj = adjudicator
        self.dir = state_dir / "batches"
        self.run_id = run_id
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self._spool = self.dir / f"{run_id}.requests.jsonl"
        self._count = 0

    def add(self, deferred: dict[str, Any]) -> str:
        """Spool a request to disk (images stay out of memory); returns its custom_id."""
        self.dir.mkdir(parents=True, exist_ok=True)
        custom_id = f"p{self._count:06d}-{deferred['cache_key'][:40]}"
        self._count += 1
        with self._spool.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"custom_id": custom_id, **deferred}) + "\n")
        return custom_id

    def run(self) -> dict[str, AdjudicationResult]:
        """Submit what fits the budget, wait for the batch, return results by custom_id.

        Every spooled request gets a result; when the API fails, the pages keep their local
        answers with the reason, as in sync mode.
        """
        results: dict[str, AdjudicationResult] = {}
        if not self._count:
            return results
        requests, keys, reserved = [], {}, {}
        with self._spool.open(encoding="utf-8") as fh:
            for line in fh:
                item = json.loads(line)
                if not self.adj.budget.try_reserve(item["worst_case_usd"]):
                    results[item["custom_id"]] = AdjudicationResult(False, None, "budget_exhausted", self.adj.model)
                    continue
                requests.append({"custom_id": item["custom_id"], "params": item["params"]})
                keys[item["custom_id"]] = item["cache_key"]
                reserved[item["custom_id"]] = item["worst_case_usd"]
        if requests:
            results.update(self._send(requests, keys, reserved))
        self._spool.unlink(missing_ok=True)
        return results

    def _send(self, requests: list[dict[str, Any]], keys: dict[str, str],
              reserved: dict[str, float]) -> dict[str, AdjudicationResult]:
        client: Any = self.adj.client
        try:
            batch = client.messages.batches.create(requests=requests)
        except Exception as exc:  # noqa: BLE001 - the API failing keeps the local answers
            for worst in reserved.values():
                self.adj.budget.settle(worst, 0.0)
            reason = f"api_error: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            return {c: AdjudicationResult(False, None, reason, self.adj.model) for c in keys}
        meta = self.dir / f"{batch.id}.batch.json"
        meta.write_text(json.dumps({"batch_id": batch.id, "run_id": self.run_id, "keys": keys}))
        log.info("message batch %s: %d pages sent, waiting", batch.id, len(requests))
        # the reservation stays on a timeout: the batch may still be billed later
        results = {c: AdjudicationResult(False, None, "batch_timeout", self.adj.model) for c in keys}
        if self._wait(batch.id):
            for custom_id, result in collect(self.adj, batch.id, keys).items():
                self.adj.budget.settle(reserved[custom_id], result.cost_usd)
                results[custom_id] = result
            meta.unlink(missing_ok=True)
        return results

    def _wait(self, batch_id: str) -> bool:
        client: Any = self.adj.client
        deadline = time.monotonic() + self.timeout_s
        while True:
            batch = client.messages.batches.retrieve(batch_id)
            if batch.processing_status == "ended":
                return True
            if time.monotonic() > deadline:
                log.warning("message batch %s still %s after %.0f s", batch_id, batch.processing_status,
                            self.timeout_s)
                return False
            time.sleep(self.poll_s)


def collect(adj: AnthropicAdjudicator, batch_id: str, keys: dict[str, str]) -> dict[str, AdjudicationResult]:
    """Results of an ended batch, checked like synchronous answers; good ones go to the cache."""
    client: Any = adj.client
    out: dict[str, AdjudicationResult] = {}
    for item in client.messages.batches.results(batch_id):
        custom_id = item.custom_id
        if custom_id not in keys:
            continue
        if item.result.type != "succeeded":
            out[custom_id] = AdjudicationResult(False, None, f"batch_{item.result.type}", adj.model)
            continue
        answer = adj.answer(item.result.message)
        spent = cost_usd(adj.model, answer.input_tokens, answer.output_tokens) * BATCH_DISCOUNT
        result = AdjudicationResult(False, None, "", adj.model, answer.input_tokens, answer.output_tokens, spent,
                                    calls=1)
        record, problem = adj._check(answer.value)
        if record is None:
            result.reason = f"invalid_answer: {problem}"
        else:
            result.adjudicated, result.record, result.reason = True, record, "adjudicated (batch)"
            adj.cache.put(keys[custom_id], {"record": record, "input_tokens": answer.input_tokens,
                                            "output_tokens": answer.output_tokens})
        out[custom_id] = result
    return out


def recover(adj: AnthropicAdjudicator, state_dir: Path) -> list[str]:
    """Fetch ended batches left by a killed run into the cache; returns what was recovered."""
    recovered = []
    for meta in sorted((state_dir / "batches").glob("*.batch.json")):
        data = json.loads(meta.read_text())
        client: Any = adj.client
        try:
            if client.messages.batches.retrieve(data["batch_id"]).processing_status != "ended":
                continue
            collect(adj, data["batch_id"], data["keys"])
        except Exception as exc:  # noqa: BLE001 - a lost batch only costs a new one
            log.warning("could not recover message batch %s: %s", data["batch_id"], exc)
            continue
        meta.unlink()
        recovered.append(data["batch_id"])
    for spool in (state_dir / "batches").glob("*.requests.jsonl"):
        spool.unlink()  # requests of a killed run that were never sent: its pages are redone
    return recovered


def batch_runner(cfg: RunConfig, adjudicator: Any) -> Any:
    """Batch mode's driver side, after fetching batches a killed run left behind into the cache.

    ``adjudicator`` is the one built at start-up to check the API key: in batch mode a
    ``DeferredAdjudicator`` whose inner Anthropic client sends the batch.
    """
    adj = cfg.adjudication
    if adj.provider != "anthropic" or adj.mode != "batch":
        return None
    recover(adjudicator.inner, cfg.output / STATE_DIR)
    return BatchRunner(adjudicator.inner, cfg.output / STATE_DIR, cfg.run_id, adj.batch_poll_s, adj.batch_timeout_s)


def _apply_batch_result(page: PageResult, result: Any) -> PageResult:
    """A held page, completed with its Message Batch answer (or its reason for having none)."""
    why = (page.adjudication_reason or "").rsplit(" -> ", 1)[0]
    page.adjudicated = result.adjudicated
    page.adjudication_reason = f"{why} -> {result.reason}"
    page.api_input_tokens, page.api_output_tokens = result.input_tokens, result.output_tokens
    page.api_cost_usd = round(result.cost_usd, 6)
    if result.adjudicated:
        page.status, page.error, page.record = "ok", None, result.record
    return page


def finish_batch(batch: BatchRunner, held: dict[str, PageResult], model: str) -> list[PageResult]:
    """Send the held pages as one batch and complete each with its answer (or why it has none)."""
    results = batch.run()
    missing = AdjudicationResult(False, None, "batch_no_result", model)
    return [_apply_batch_result(page, results.get(custom_id, missing)) for custom_id, page in held.items()]
