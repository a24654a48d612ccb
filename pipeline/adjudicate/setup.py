"""Building the configured adjudicator inside a worker, with a budget shared by all workers.

The budget must be one number for the whole run, however many Ray actors spend it, so it lives
in a small Ray actor; each worker reserves the worst case of a call there before making it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.adjudicate.base import Adjudicator, Budget, ResponseCache
from pipeline.config import AdjudicationConfig
from pipeline.schema import CompiledSchema


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
