"""The one step that turns settings into a run's resolved configuration.

Everything automatic is decided here and nowhere else: model names become paths, ``workers``
and ``threads`` follow the cores, the VLM's chat handler comes from the GGUF metadata and the
context size from the schema, page and answer.  The driver records what was decided in the
manifest (``resolved``), so a run can be repeated with the same values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config.settings import (
    AdjudicationConfig,
    ModelConfig,
    RunConfig,
    Settings,
    build_config,
    default_draft,
    default_threads,
    default_workers,
    expand_inputs,
)
from pipeline.errors import ConfigError
from pipeline.schema.compiled import CompiledSchema


def resolve(settings: Settings, base: Path | None = None) -> RunConfig:
    """Settings (relative paths from ``base``, a job file's folder) -> RunConfig with workers and
    threads decided; the model-dependent values are decided by ``complete`` at the run's start."""
    from pipeline.model.registry import REGISTRY
    from pipeline.model.registry import resolve as resolve_model

    def here(p: Path | str) -> Path:
        p = Path(p).expanduser()
        return p if base is None or p.is_absolute() else base / p

    def locate(value: str, role: str) -> Path | None:
        """A path (relative to the job file), or the name of an installed model."""
        return resolve_model(value, role) if value in REGISTRY and not here(value).exists() else here(value)

    s = settings
    if s.adjudicate_mode == "batch" and s.adjudicator != "anthropic" and not s.no_api:
        raise ConfigError("--adjudicate-mode batch needs --adjudicator anthropic (Message Batches API)")
    if s.model is None:
        raise ConfigError("no model given: pass --model PATH (or set EXTRACT_MODEL), or a model name from "
                          "'extract models list' "
                          "(for a tiny test model run 'extract models make-tiny models/tiny')")
    model_path = locate(s.model, "model")
    assert model_path is not None
    workers = s.workers or default_workers(gpu=s.n_gpu_layers != 0)
    model = ModelConfig(path=model_path, mmproj=locate(s.mmproj, "mmproj") if s.mmproj else None,
                        chat_handler=s.chat_handler, n_ctx=None if s.n_ctx == "auto" else s.n_ctx,
                        n_threads=s.threads or default_threads(workers), n_gpu_layers=s.n_gpu_layers,
                        draft_tokens=s.draft_tokens if s.draft_tokens is not None else default_draft(s.n_gpu_layers),
                        seed=s.seed,
                        max_tokens=s.max_tokens, temperature=s.temperature, retries=s.retries, samples=s.samples,
                        sampling=s.sampling, greedy_sure=s.greedy_sure,
                        read_pages=s.read_pages, amounts=s.amounts, dual_view=s.dual_view, verbose=s.verbose)
    adjudication = AdjudicationConfig(
        provider="none" if s.no_api else s.adjudicator, model=s.adjudicator_model, base_url=s.adjudicator_url,
        when=s.adjudicate, below=s.adjudicate_below, mode=s.adjudicate_mode, batch_poll_s=s.batch_poll_s,
        batch_timeout_s=s.batch_timeout_s, budget_usd=s.budget_usd,
        cache_dir=here(s.api_cache) if s.api_cache else None, send_image=s.adjudicator_send_image,
        response_format=s.adjudicator_response_format, max_output_tokens=s.adjudicator_max_output_tokens,
        max_retries=s.adjudicator_max_retries, timeout_s=s.adjudicator_timeout_s)
    schema_path = here(s.schema_path) if here(s.schema_path).exists() or ":" not in s.schema_path else s.schema_path
    return build_config(
        schema_path=schema_path, inputs=expand_inputs([str(here(i)) for i in s.inputs]),
        output=here(s.output), model=model, backend=s.backend, workers=workers, dpi=s.dpi,
        max_pixels=s.max_pixels, ocr_line_orientation=s.ocr_line_orientation, limit=s.limit,
        ray_address=s.ray_address, adjudication=adjudication, job=s.name,
        force=s.force, retry_errors=s.retry_errors, max_error_rate=s.max_error_rate, review_below=s.review_below,
        commit_documents=s.commit_documents, commit_seconds=s.commit_seconds, max_page_crashes=s.max_page_crashes,
        einvoice=s.einvoice)


def complete(cfg: RunConfig, schema: CompiledSchema) -> RunConfig:
    """Check that the model loads and the grammar compiles (in the driver, before any page), and
    fill in the chat handler and the ``auto`` context size, so every worker allocates the same."""
    from pipeline.model.context import resolve_n_ctx
    from pipeline.model.preflight import preflight
    from pipeline.model.prompt import prompt_version

    chat_handler = preflight(cfg.model, schema, cfg.backend)
    n_ctx = resolve_n_ctx(cfg.model, schema.raw, cfg.backend == "vlm", cfg.max_pixels, chat_handler)
    return cfg.model_copy(update={"chat_handler": chat_handler, "prompt_version": prompt_version(),
                                  "model": cfg.model.model_copy(update={"n_ctx": n_ctx})})


def resolved_values(cfg: RunConfig) -> dict[str, Any]:
    """What ``resolve`` and ``complete`` decided, for the manifest."""
    return {"prompt_version": cfg.prompt_version, "workers": cfg.workers, "threads": cfg.model.n_threads,
            "n_ctx": cfg.model.n_ctx,
            "backend": cfg.backend, "chat_handler": cfg.chat_handler, "model": str(cfg.model.path),
            "mmproj": str(cfg.model.mmproj) if cfg.model.mmproj else None}
