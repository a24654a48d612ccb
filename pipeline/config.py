"""The one typed configuration of a run.

``extract run``'s options and a job file's keys are the same flat ``RunOptions`` (so a job
file is validated exactly like the command line, and an unknown key is an error with its
name); ``RunOptions.to_run_config()`` turns them into the nested ``RunConfig`` that the driver
serialises to JSON and every Ray worker rebuilds.  One definition of every setting.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import ConfigError

PROMPT_VERSION = "vlm-v1"


def cpu_count() -> int:
    """Cores this process may use (affinity-aware), the budget for llama.cpp threads."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"

DEFAULT_MAX_PIXELS = 4_000_000  # a page raster's pixel cap (A4 at 200 dpi is ~3.9 M)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """How each worker loads and runs llama.cpp."""

    path: Path
    mmproj: Path | None = None
    chat_handler: str = "auto"
    n_ctx: int | None = Field(None, ge=512)  # None: sized from the prompt, page and answer (model/context.py)
    n_threads: int = Field(1, ge=1)
    n_gpu_layers: int = Field(0, ge=-1)
    seed: int = 0
    max_tokens: int = Field(2048, ge=16)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    retries: int = Field(1, ge=0, le=5)
    samples: int = Field(3, ge=1, le=9)
    # VLM only: one more answer from the page's text layer (or OCR), voted with the image samples
    dual_view: bool = False
    verbose: bool = False


class AdjudicationConfig(_Strict):
    """Which API model settles the pages the local model is unsure about, and the spending cap."""

    provider: Literal["none", "anthropic", "openai"] = "none"
    model: str = "claude-opus-4-7"
    # "disputed": only pages whose samples disagree, that break a rule or failed locally;
    # "always": every page (the all-API baseline, or to build ground truth).
    when: Literal["disputed", "always"] = "disputed"
    below: float = Field(1.0, gt=0, le=1)  # a field is unsure when its sample agreement is below this
    # "sync": each worker calls the API as it goes; "batch": one Anthropic Message Batch at the
    # end of the local pass (half price; results within 24 h, usually minutes).
    mode: Literal["sync", "batch"] = "sync"
    batch_poll_s: float = Field(60.0, gt=0)
    batch_timeout_s: float = Field(24 * 3600.0, gt=0)
    base_url: str | None = None
    budget_usd: float | None = Field(None, ge=0)
    cache_dir: Path | None = None
    send_image: bool = True
    response_format: Literal["json_schema", "json_object"] = "json_schema"
    max_output_tokens: int = Field(4096, ge=256)
    max_retries: int = Field(3, ge=0, le=10)
    timeout_s: float = Field(120.0, gt=0)


class RunConfig(_Strict):
    """Everything that decides what a run reads, how it extracts, and where it writes."""

    schema_path: Path
    inputs: tuple[Path, ...]
    output: Path
    model: ModelConfig
    backend: Literal["vlm", "text"] = "vlm"
    workers: int = Field(1, ge=1)
    dpi: int = Field(150, ge=36, le=600)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=10_000)
    limit: int | None = Field(None, ge=1)
    ray_address: str | None = None
    adjudication: AdjudicationConfig = AdjudicationConfig()
    run_id: str = Field(default_factory=new_run_id)
    prompt_version: str = PROMPT_VERSION
    job: str | None = None
    force: bool = False
    retry_errors: bool = False
    max_error_rate: float | None = Field(None, ge=0, le=1)
    commit_documents: int = Field(32, ge=1)
    commit_seconds: float = Field(120.0, gt=0)
    max_page_crashes: int = Field(2, ge=1, le=10)

    def settings_key(self, schema_sha256: str, model_sha256: str, mmproj_sha256: str | None) -> str:
        """Hash of everything that changes a document's result: a change means redo it.

        Workers, threads, context size, budgets and paths do not change what the model answers;
        the model files, schema, prompt, rendering and sampling settings do.
        """
        m = self.model
        a = self.adjudication
        relevant = {
            "schema": schema_sha256, "model": model_sha256, "mmproj": mmproj_sha256,
            "prompt": self.prompt_version, "backend": self.backend, "dpi": self.dpi,
            "max_pixels": self.max_pixels, "chat_handler": m.chat_handler,
            "seed": m.seed, "max_tokens": m.max_tokens, "temperature": m.temperature, "retries": m.retries,
            "samples": m.samples, "dual_view": m.dual_view,
            "adjudicator": [a.provider, a.model, a.when, a.below] if a.provider != "none" else None,
        }
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:32]

    @model_validator(mode="before")
    @classmethod
    def _resolve_backend(cls, data: Any) -> Any:
        """'auto' (the default): the VLM when an mmproj is given, else the text backend."""
        if isinstance(data, dict) and data.get("backend", "auto") == "auto":
            model = data.get("model")
            mmproj = model.mmproj if isinstance(model, ModelConfig) else (model or {}).get("mmproj")
            data = {**data, "backend": "vlm" if mmproj else "text"}
        return data

    @model_validator(mode="after")
    def _check_inputs(self) -> RunConfig:
        if not self.inputs:
            raise ValueError("at least one input is required")
        if self.model.dual_view and self.backend != "vlm":
            raise ValueError("dual view needs the VLM backend (--mmproj): the text backend has no image view")
        return self


MAX_AUTO_WORKERS = 8


def default_workers(cores: int | None = None, gpu: bool = False) -> int:
    """Workers when ``--workers`` is not given: one per core (up to 8), or one for a GPU.

    Measured on 2 cores with Qwen2.5-Coder-0.5B (docs/performance.md): 2 workers x 1 thread
    gave 1.56-1.60x the pages/s of 1 worker x 2 threads.  Token generation is memory-bound, so
    independent streams scale better than more threads on one stream, and the weights are
    mmap-shared, so an extra worker costs only its own KV cache and buffers.
    """
    if gpu:
        return 1
    return max(1, min(cores or cpu_count(), MAX_AUTO_WORKERS))


def default_threads(workers: int, cores: int | None = None) -> int:
    """Threads per worker so that workers x threads never exceeds the cores.

    llama.cpp's OpenMP threads busy-wait: oversubscribing cores collapses throughput.
    """
    cores = cores or cpu_count()
    return max(1, cores // max(1, workers))


class RunOptions(_Strict):
    """The flat settings of ``extract run`` and of a job file (``jobs/NAME.toml``).

    Relative paths in a job file are relative to the job file's folder, so a job runs the
    same from cron as from a shell.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str | None = None
    inputs: list[str] = Field(min_length=1)
    schema_path: Path = Field(alias="schema")
    output: Path
    model: str | None = None
    mmproj: str | None = None
    backend: Literal["auto", "vlm", "text"] = "auto"
    chat_handler: str = "auto"
    workers: int | None = Field(None, ge=1)
    threads: int | None = Field(None, ge=1)
    dpi: int = Field(150, ge=36, le=600)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=10_000)
    limit: int | None = Field(None, ge=1)
    n_ctx: int | Literal["auto"] = "auto"
    max_tokens: int = Field(2048, ge=16)
    n_gpu_layers: int = Field(0, ge=-1)
    seed: int = 0
    retries: int = Field(1, ge=0, le=5)
    samples: int = Field(3, ge=1, le=9)
    dual_view: bool = False
    adjudicator: Literal["none", "anthropic", "openai"] = "none"
    adjudicator_model: str = "claude-opus-4-7"
    adjudicator_url: str | None = None
    adjudicate: Literal["disputed", "always"] = "disputed"
    adjudicate_mode: Literal["sync", "batch"] = "sync"
    adjudicate_below: float = Field(1.0, gt=0, le=1)
    batch_poll_s: float = Field(60.0, gt=0)
    budget_usd: float | None = Field(None, ge=0)
    no_api: bool = False
    api_cache: Path | None = None
    ray_address: str | None = None
    max_error_rate: float | None = Field(None, ge=0, le=1)
    commit_documents: int = Field(32, ge=1)
    commit_seconds: float = Field(120.0, gt=0)
    force: bool = False
    retry_errors: bool = False
    verbose: bool = False

    def to_run_config(self, base: Path | None = None) -> RunConfig:
        from pipeline.models import REGISTRY, resolve

        def here(p: Path | str) -> Path:
            p = Path(p).expanduser()
            return p if base is None or p.is_absolute() else base / p

        def locate(value: str, role: str) -> Path | None:
            """A path (relative to the job file), or the name of an installed model."""
            return resolve(value, role) if value in REGISTRY and not here(value).exists() else here(value)

        if self.adjudicate_mode == "batch" and self.adjudicator != "anthropic" and not self.no_api:
            raise ConfigError("--adjudicate-mode batch needs --adjudicator anthropic (Message Batches API)")
        if self.model is None:
            raise ConfigError("no model given: pass --model PATH (or set EXTRACT_MODEL), or a model name from "
                              "'extract models list' "
                              "(for a tiny test model run 'extract models make-tiny models/tiny')")
        model_path = locate(self.model, "model")
        assert model_path is not None
        mmproj = locate(self.mmproj, "mmproj") if self.mmproj else None
        workers = self.workers or default_workers(gpu=self.n_gpu_layers != 0)
        n_threads = self.threads or default_threads(workers)
        model = ModelConfig(path=model_path, mmproj=mmproj, chat_handler=self.chat_handler,
                            n_ctx=None if self.n_ctx == "auto" else self.n_ctx,
                            n_threads=n_threads, n_gpu_layers=self.n_gpu_layers, seed=self.seed,
                            max_tokens=self.max_tokens, retries=self.retries, samples=self.samples,
                            dual_view=self.dual_view,
                            verbose=self.verbose)
        adjudication = AdjudicationConfig(
            provider="none" if self.no_api else self.adjudicator, model=self.adjudicator_model,
            base_url=self.adjudicator_url, when=self.adjudicate, below=self.adjudicate_below,
            mode=self.adjudicate_mode,
            batch_poll_s=self.batch_poll_s, budget_usd=self.budget_usd,
            cache_dir=here(self.api_cache) if self.api_cache else None)
        return build_config(
            schema_path=here(self.schema_path), inputs=expand_inputs([str(here(i)) for i in self.inputs]),
            output=here(self.output), model=model, backend=self.backend, workers=workers, dpi=self.dpi,
            max_pixels=self.max_pixels, limit=self.limit, ray_address=self.ray_address,
            adjudication=adjudication, job=self.name, force=self.force, retry_errors=self.retry_errors,
            max_error_rate=self.max_error_rate, commit_documents=self.commit_documents,
            commit_seconds=self.commit_seconds)


def expand_inputs(inputs: list[str]) -> tuple[Path, ...]:
    """Globs (``/srv/in/**/*.pdf``) expand here; a glob matching nothing is kept, to be reported."""
    out: list[Path] = []
    for item in inputs:
        if glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            out.extend(Path(m) for m in matches) if matches else out.append(Path(item))
        else:
            out.append(Path(item))
    return tuple(out)


def options(values: dict[str, Any]) -> RunOptions:
    """Validate flat options (CLI or job file) into RunOptions, naming the offending key."""
    try:
        return RunOptions.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        msg = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"invalid setting {where}: {msg}") from None


def build_config(**values: object) -> RunConfig:
    """Validate values into a RunConfig, turning pydantic's report into one line."""
    try:
        return RunConfig.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
