"""The VLM's extra samples continue from the first sample's evaluated prompt (real llama.cpp)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from pipeline.config.settings import ModelConfig
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.model.base import PageInput
from pipeline.model.llama import LlamaVLMBackend
from pipeline.model.preflight import preflight
from pipeline.schema.compiled import load_schema

from .conftest import INVOICE_SCHEMA


class CountingHandler:
    """Wraps the real chat handler and counts how often a full prompt (image included) is evaluated."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    def __call__(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner(**kwargs)


def _png(colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 128), colour).save(buf, format="PNG")
    return buf.getvalue()


def _backend(tiny_vlm: TinyVLM) -> tuple[LlamaVLMBackend, CountingHandler]:
    cfg = ModelConfig(path=tiny_vlm.model, mmproj=tiny_vlm.mmproj, n_ctx=8192, max_tokens=1536, seed=7)
    compiled = load_schema(INVOICE_SCHEMA)
    backend = LlamaVLMBackend(cfg, compiled, "0" * 64, preflight(cfg, compiled))
    counter = CountingHandler(backend.llm.chat_handler)
    backend.llm.chat_handler = counter
    return backend, counter


def test_samples_of_a_page_evaluate_the_image_once_and_answer_as_the_full_path(tiny_vlm: TinyVLM) -> None:
    page, other = PageInput("a.png", 1, _png("white"), ""), PageInput("b.png", 1, _png("grey"), "")
    reused, counter = _backend(tiny_vlm)
    full, full_counter = _backend(tiny_vlm)
    try:
        answers = [reused.execute(page, attempt) for attempt in range(3)]
        assert counter.calls == 1  # samples 2 and 3 only decode
        expected = []
        for attempt in range(3):
            full._prompt = None  # force the handler path: image encoded and prompt evaluated again
            expected.append(full.execute(page, attempt))
        assert full_counter.calls == 3
        # Same seed and temperature on the same evaluated prompt: the same tokens come out.
        assert [a.text for a in answers] == [e.text for e in expected]
        assert all(a.prompt_tokens == answers[0].prompt_tokens for a in answers)
        # Another page is a new prompt: the handler runs again, and its samples reuse it.
        reused.execute(other, 0)
        reused.execute(other, 1)
        assert counter.calls == 2
        for answer in answers:
            record, problem = reused._check(answer)
            assert record is not None, problem
    finally:
        reused.close()
        full.close()
