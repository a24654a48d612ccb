"""The one typed configuration of a run.

The CLI (and later job files) build a ``RunConfig``; the driver serialises it to JSON and every
Ray worker rebuilds the same object, so there is exactly one definition of every setting and
an unknown or misspelt key is an error, never silently ignored.
"""

from __future__ import annotations

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """How each worker loads and runs llama.cpp."""

    path: Path
    mmproj: Path | None = None
    chat_handler: str = "auto"
    n_ctx: int = Field(8192, ge=512)
    n_threads: int = Field(1, ge=1)
    n_gpu_layers: int = Field(0, ge=-1)
    seed: int = 0
    max_tokens: int = Field(2048, ge=16)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    retries: int = Field(1, ge=0, le=5)
    samples: int = Field(1, ge=1, le=9)
    verbose: bool = False


class AdjudicationConfig(_Strict):
    """Which API model settles the pages the local model is unsure about, and the spending cap."""

    provider: Literal["none", "anthropic", "openai"] = "none"
    model: str = "claude-opus-4-7"
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
    max_pixels: int = Field(4_000_000, ge=10_000)
    limit: int | None = Field(None, ge=1)
    ray_address: str | None = None
    adjudication: AdjudicationConfig = AdjudicationConfig()
    run_id: str = Field(default_factory=new_run_id)
    prompt_version: str = PROMPT_VERSION

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
        return self


def default_threads(workers: int, cores: int | None = None) -> int:
    """Threads per worker so that workers x threads never exceeds the cores.

    llama.cpp's OpenMP threads busy-wait: oversubscribing cores collapses throughput.
    """
    cores = cores or cpu_count()
    return max(1, cores // max(1, workers))


def build_config(**values: object) -> RunConfig:
    """Validate values into a RunConfig, turning pydantic's report into one line."""
    try:
        return RunConfig.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
