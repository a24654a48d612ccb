"""Building the configured adjudicator inside a worker, with a budget shared by all workers.

The budget must be one number for the whole run, however many Ray actors spend it, so it lives
in a small Ray actor; each worker reserves the worst case of a call there before making it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.adjudicate.base import Adjudicator, Budget, ResponseCache
from pipeline.config.settings import AdjudicationConfig, RunConfig
from pipeline.results import PageResult
from pipeline.schema.compiled import CompiledSchema


class BudgetKeeper:
    """The run's budget, as a Ray actor (see ``remote_budget``)."""

    def __init__(self, limit_usd: float | None) -> None:
        self.budget = Budget(limit_usd)

    def try_reserve(self, worst_case: float) -> bool:
        return self.budget.try_reserve(worst_case)

    def settle(self, reserved: float, actual: float) -> None:
        self.budget.settle(reserved, actual)

    def spent(self) -> float:
        return self.budget.spent


class RemoteBudget(Budget):
    """A ``Budget`` whose bookkeeping happens in the shared ``BudgetKeeper`` actor."""

    def __init__(self, keeper: Any, limit_usd: float | None) -> None:
        super().__init__(limit_usd)
        self.keeper = keeper

    def try_reserve(self, worst_case: float) -> bool:
        import ray

        return bool(ray.get(self.keeper.try_reserve.remote(worst_case)))

    def settle(self, reserved: float, actual: float) -> None:
        import ray

        ray.get(self.keeper.settle.remote(reserved, actual))


def start_budget_keeper(limit_usd: float | None) -> Any:
    import ray

    return ray.remote(num_cpus=0)(BudgetKeeper).remote(limit_usd)


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "extract" / "adjudication"


def make_adjudicator(cfg: AdjudicationConfig, schema: CompiledSchema, budget: Budget) -> Adjudicator | None:
    if cfg.provider == "none":
        return None
    from pipeline.adjudicate.api import AnthropicAdjudicator, OpenAIAdjudicator

    cache = ResponseCache(cfg.cache_dir or default_cache_dir())
    common: dict[str, Any] = {"budget": budget, "cache": cache, "max_output_tokens": cfg.max_output_tokens,
                              "base_url": cfg.base_url, "max_retries": cfg.max_retries, "timeout_s": cfg.timeout_s}
    if cfg.provider == "anthropic" and cfg.mode == "batch":
        from pipeline.adjudicate.batch import DeferredAdjudicator

        return DeferredAdjudicator(schema, cfg.model, inner=AnthropicAdjudicator(schema, cfg.model, **common),
                                   **common)
    if cfg.provider == "anthropic":
        return AnthropicAdjudicator(schema, cfg.model, **common)
    return OpenAIAdjudicator(schema, cfg.model, send_image=cfg.send_image, response_format=cfg.response_format,
                             **common)


class RunAdjudication:
    """The driver's side of adjudication for one run.

    Built before any page is read, so a missing API key fails the run at start-up; it starts
    the budget shared by every worker, and in batch mode holds the pages that wait for the
    Message Batch and completes them after the local pass (after fetching, into the cache,
    batches a killed run left behind).
    """

    def __init__(self, cfg: RunConfig, schema: CompiledSchema) -> None:
        from pipeline.adjudicate.batch import batch_runner

        self.cfg = cfg.adjudication
        self.on = self.cfg.provider != "none"
        adjudicator = make_adjudicator(self.cfg, schema, Budget(self.cfg.budget_usd)) if self.on else None
        self.batch = batch_runner(cfg, adjudicator) if self.on else None
        self.held: dict[str, PageResult] = {}

    def budget_keeper(self) -> Any:
        """The run's budget as a Ray actor (Ray must be up), or None when adjudication is off."""
        return start_budget_keeper(self.cfg.budget_usd) if self.on else None

    def hold(self, result: PageResult) -> bool:
        """Keep a page that waits for the Message Batch; False when it is complete as it is."""
        request, result.batch_request = result.batch_request, None
        if self.batch is None or not request:
            return False
        self.held[self.batch.add(json.loads(request))] = result
        return True

    def finish(self) -> list[PageResult]:
        """The held pages, each completed with its batch answer or the reason it has none."""
        from pipeline.adjudicate.batch import finish_batch

        return finish_batch(self.batch, self.held, self.cfg.model) if self.batch is not None else []
