"""``--n-ctx auto``: the context is sized from the prompt, the page and the answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config.settings import ModelConfig, options
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.errors import ConfigError
from pipeline.model import registry as models
from pipeline.model.context import (
    TEXT_PAGE_TOKENS,
    UNKNOWN_IMAGE_TOKENS,
    auto_n_ctx,
    image_tokens,
    resolve_n_ctx,
    text_tokens,
)
from pipeline.model.llama import LlamaVLMBackend
from pipeline.model.preflight import preflight
from pipeline.schema.compiled import load_schema

from .conftest import INVOICE_SCHEMA


def test_image_tokens_follow_the_projector() -> None:
    llava = {"clip.projector_type": "mlp", "clip.vision.image_size": 336, "clip.vision.patch_size": 14}
    assert image_tokens(llava, 4_000_000) == 576  # LLaVA-1.5: a 24 x 24 grid, whatever the page size
    assert image_tokens(llava, 4_000_000, "llava-1-6") == 5 * 576  # up to four tiles + the overview
    qwen = {"clip.projector_type": "qwen2vl_merger", "clip.vision.patch_size": 14}
    assert image_tokens(qwen, 1_003_520) == 1280  # one token per 28 x 28 pixels: grows with --max-pixels
    assert image_tokens(qwen, 4_000_000) > image_tokens(qwen, 1_000_000)
    assert image_tokens({"clip.projector_type": "gemma3"}, 4_000_000) == 256
    assert image_tokens({"clip.projector_type": "something-new"}, 4_000_000) == UNKNOWN_IMAGE_TOKENS


def test_auto_rounds_up_and_stays_within_the_training_context() -> None:
    assert auto_n_ctx(900, 576, 2048, None) == 3840  # 900 + 576 + 2048 + 64 = 3588 -> 15 x 256
    assert auto_n_ctx(10, 10, 16, None) == 512
    assert auto_n_ctx(900, 5102, 2048, 4096) == 4096


def test_text_model_context_covers_schema_page_and_answer() -> None:
    schema = load_schema(INVOICE_SCHEMA)
    cfg = ModelConfig(path=models.model_path("qwen2.5-coder-0.5b"), max_tokens=2048, read_pages=1)
    n_ctx = resolve_n_ctx(cfg, schema.raw, image=False, max_pixels=4_000_000)
    assert TEXT_PAGE_TOKENS + 2048 + 256 < n_ctx <= 8192 and n_ctx % 256 == 0
    grouped = resolve_n_ctx(cfg.model_copy(update={"read_pages": 4}), schema.raw, False, 4_000_000)
    assert grouped == n_ctx + text_tokens(4) - TEXT_PAGE_TOKENS  # pages read together: their text fits
    bigger = resolve_n_ctx(cfg.model_copy(update={"max_tokens": 4096}), schema.raw, False, 4_000_000)
    assert bigger == n_ctx + 2048
    assert resolve_n_ctx(cfg.model_copy(update={"n_ctx": 4096}), schema.raw, False, 4_000_000) == 4096


def test_vlm_backend_loads_with_the_auto_context(tiny_vlm: TinyVLM) -> None:
    schema = load_schema(INVOICE_SCHEMA)
    cfg = ModelConfig(path=tiny_vlm.model, mmproj=tiny_vlm.mmproj, max_tokens=1024)
    backend = LlamaVLMBackend(cfg, schema, "0" * 64, preflight(cfg, schema))
    try:
        assert backend.llm.n_ctx() == backend.n_ctx == resolve_n_ctx(cfg, schema.raw, True, 4_000_000, "mtmd")
    finally:
        backend.close()


def test_n_ctx_setting_is_auto_or_a_number(tmp_path: Path) -> None:
    base = {"schema": "s.json", "inputs": ["in"], "output": "out"}
    assert options(base).n_ctx == "auto"
    assert options({**base, "n_ctx": 4096}).n_ctx == 4096
    with pytest.raises(ConfigError, match="n_ctx"):
        options({**base, "n_ctx": "big"})
    result = CliRunner().invoke(main, ["run", "--schema", str(INVOICE_SCHEMA), str(tmp_path), "-o",
                                       str(tmp_path / "o"), "--n-ctx", "big"])
    assert result.exit_code == 2 and "--n-ctx" in result.output and "integer" in result.output
    result = CliRunner().invoke(main, ["run", "--schema", str(INVOICE_SCHEMA), str(tmp_path), "-o",
                                       str(tmp_path / "o"), "--n-ctx", "100"])
    assert result.exit_code == 2 and "--n-ctx" in result.output and "512" in result.output


def test_dual_view_context_also_fits_a_page_of_text(tiny_vlm: TinyVLM) -> None:
    raw = load_schema(INVOICE_SCHEMA).raw
    cfg = ModelConfig(path=tiny_vlm.model, mmproj=tiny_vlm.mmproj, max_tokens=1024)
    image_only = resolve_n_ctx(cfg, raw, True, 4_000_000, "mtmd")
    both = resolve_n_ctx(cfg.model_copy(update={"dual_view": True}), raw, True, 4_000_000, "mtmd")
    # the tiny projector makes 16 image tokens; the text view's page allowance replaces them
    assert TEXT_PAGE_TOKENS - 16 - 256 < both - image_only <= TEXT_PAGE_TOKENS - 16 + 256
