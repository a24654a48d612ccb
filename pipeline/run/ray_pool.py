"""Ray: an embedded instance or a cluster, and the actor pool that streams pages through the workers."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from pipeline.config.settings import RunConfig, cpu_count
from pipeline.errors import ExtractError
from pipeline.run.worker import PageWorker
from pipeline.schema.compiled import CompiledSchema


def ensure_ray(cfg: RunConfig) -> bool:
    """Connect to the cluster named by --ray-address / RAY_ADDRESS, else start an embedded one.

    Returns True when this call started Ray (and so should stop it).
    """
    import ray
    import ray.data

    if ray.is_initialized():
        return False
    level = logging.INFO if cfg.model.verbose else logging.ERROR
    for handler in logging.getLogger("ray.data").handlers:  # Ray Data's own console handler
        if handler.get_name() == "console":
            handler.setLevel(level)
    if not cfg.model.verbose:
        # The driver's core worker logs to stderr in C++; keep a nightly log readable.
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    address = cfg.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        try:
            ray.init(address=address, log_to_driver=cfg.model.verbose, logging_level=level)
        except ConnectionError as exc:
            hint = "" if os.environ.get("RAY_AUTH_MODE") else (
                "; a cluster started with 'ray start' (Ray >= 2.59) uses token authentication: "
                "set RAY_AUTH_MODE=token here too")
            raise ExtractError(f"cannot connect to the Ray cluster at {address}: {exc}{hint}") from None
    else:
        # address="local": always a new embedded Ray, even if 'ray start' left a cluster on this machine.
        cpus = max(cpu_count(), cfg.workers * cfg.model.n_threads)
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=cfg.model.verbose,
                 logging_level=level)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    return True


def stream(cfg: RunConfig, tasks: list[dict[str, Any]], schema: CompiledSchema, model_sha256: str,
           budget_keeper: Any, crash_counter: Any, notes: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Page rows as the workers finish them; how many pages each actor holds goes into ``notes``."""
    import ray

    pages = ray.data.from_items(tasks, override_num_blocks=max(1, min(len(tasks), 64)))
    strategy, notes["pages_per_worker"], why = actor_pool(cfg.workers)
    if why:
        notes["pages_per_worker_reason"] = why
    results = pages.map_batches(
        PageWorker,
        fn_constructor_kwargs={"config_json": cfg.model_dump_json(), "schema_raw": schema.raw,
                               "model_sha256": model_sha256, "budget_keeper": budget_keeper,
                               "crash_counter": crash_counter},
        compute=strategy,
        batch_size=1,
        num_cpus=cfg.model.n_threads,
        num_gpus=1 if cfg.model.n_gpu_layers != 0 and _cluster_has_gpus() else None,
    )
    yield from results.iter_rows()


CONCURRENT_PAGES = 2  # per actor: one in the model, the next one read ahead (see PageWorker)


def actor_pool(workers: int) -> tuple[Any, int, str | None]:
    """A fixed pool; each actor holds two pages at once: one in the model, the other being read or adjudicated.

    Not more: pages take seconds, so deeper queues only unbalance the tail of the run.  Returns
    the strategy, the pages each actor holds, and why it is fewer than two (an older Ray Data).
    """
    import ray

    try:
        return ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=CONCURRENT_PAGES,
                                          max_concurrent_calls_per_actor=CONCURRENT_PAGES,
                                          enable_true_multi_threading=True), CONCURRENT_PAGES, None
    except TypeError:  # Ray Data without concurrent calls: one page at a time per actor
        return (ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=CONCURRENT_PAGES), 1,
                "this Ray Data has no concurrent calls per actor: one page at a time")


def _cluster_has_gpus() -> bool:
    import ray

    return float(ray.cluster_resources().get("GPU", 0)) >= 1
