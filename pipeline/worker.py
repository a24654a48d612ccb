"""What runs inside a Ray actor: render a page, ask the model, return one result row.

``PageWorker`` is the Ray Data callable class: Ray constructs it once per actor, so the model
is loaded once per actor and then serves every page routed to it.  ``process_page`` is the
per-page work as a plain function, so it is testable without Ray.  Whatever happens to a
page, it comes back as exactly one row with ``status`` ``ok`` or ``error``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.config import RunConfig
from pipeline.model.base import Backend, PageInput
from pipeline.render import RenderError, render_page
from pipeline.schema import compile_schema

TASK_KEYS = ("source_path", "source_sha256", "page_number", "page_count")


def process_page(backend: Backend, task: dict[str, Any], dpi: int, max_pixels: int) -> dict[str, Any]:
    row: dict[str, Any] = {k: task[k] for k in TASK_KEYS}
    try:
        page = render_page(Path(task["source_path"]), int(task["page_number"]), dpi, max_pixels)
    except RenderError as exc:
        row.update(status="error", error=f"render_error: {exc}", record_json=None, raw_output=None,
                   attempts=0, latency_ms=0.0, prompt_tokens=0, completion_tokens=0)
        return row
    result = backend.extract(PageInput(task["source_path"], int(task["page_number"]), page.png, page.text))
    row.update(
        status=result.status,
        error=result.error,
        record_json=json.dumps(result.record, ensure_ascii=False) if result.record is not None else None,
        raw_output=result.raw_output,
        attempts=result.attempts,
        latency_ms=result.latency_ms,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
    )
    return row


class PageWorker:
    """Ray Data actor UDF: one model per actor, one row per page."""

    def __init__(self, config_json: str, schema_raw: dict[str, Any], model_sha256: str,
                 chat_handler: str) -> None:
        from pipeline.model.llama_vlm import LlamaVLMBackend

        self.cfg = RunConfig.model_validate_json(config_json)
        schema = compile_schema(schema_raw, str(self.cfg.schema_path))
        self.backend = LlamaVLMBackend(self.cfg.model, schema, model_sha256, chat_handler)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        rows = []
        for i in range(len(batch["source_path"])):
            task = {k: _plain(batch[k][i]) for k in TASK_KEYS}
            rows.append(process_page(self.backend, task, self.cfg.dpi, self.cfg.max_pixels))
        return {k: [r[k] for r in rows] for k in rows[0]} if rows else {}


def _plain(value: Any) -> Any:
    """numpy scalars from Ray batches -> plain Python values."""
    return value.item() if hasattr(value, "item") else value
