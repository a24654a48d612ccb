"""How many tokens of context each worker allocates (``--n-ctx auto``, the default).

llama.cpp allocates the KV cache for the whole context when a worker loads the model, so a
fixed large number costs memory (VRAM on a GPU) in every worker for tokens no page uses, and a
fixed small one fails pages whose image needs more.  ``auto`` adds up what one request can hold:
the fixed prompt (system + schema, counted with the model's own tokenizer), the page (image
tokens from the projector's metadata and ``--max-pixels``, or an allowance for a page of text)
and the answer (``--max-tokens``); rounded up, capped at the model's training context.  With a
dual view the VLM also reads the page's text, so the page allowance is the larger of the two.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pipeline.config.settings import ModelConfig
from pipeline.model.gguf import gguf_metadata
from pipeline.model.prompt import SYSTEM_PROMPT, prompt_schema
from pipeline.render.pages import GROUP_CHARS
from pipeline.schema.grammar import answer_schema

TEXT_PAGE_TOKENS = 3072  # a dense A4 page of text is 1,000-2,000 tokens
CHARS_PER_TOKEN = 2  # a cautious estimate for a page's text (numbers and codes tokenise densely)


def text_tokens(read_pages: int) -> int:
    """The text a request may hold: a page, or the pages read together (``--read-pages``: the plan
    groups pages while their text layer fits ``GROUP_CHARS``, see ``render.pages.page_groups``)."""
    return max(TEXT_PAGE_TOKENS, GROUP_CHARS // CHARS_PER_TOKEN) if read_pages > 1 else TEXT_PAGE_TOKENS
UNKNOWN_IMAGE_TOKENS = 4096  # projectors whose token count we cannot derive
TEMPLATE_TOKENS = 64  # chat-template markers and the fixed instructions around the page
# Projectors with a fixed grid: (image_size / patch_size)^2 tokens per image (LLaVA-1.6 tiles: x5).
FIXED_GRID = {"mlp", "mlp_norm", "ldp", "ldpv2"}
# Qwen-VL style: the image keeps its size, one token per 2x2 patches.
MERGE_2X2 = {"qwen2vl_merger", "qwen2.5vl_merger", "qwen25vl", "qwen3vl_merger"}
FIXED_TOKENS = {"gemma3": 256}


def image_tokens(mmproj_meta: dict[str, Any], max_pixels: int, chat_handler: str | None = None) -> int:
    """Upper bound of the tokens one page image becomes, from the mmproj's GGUF metadata."""
    projector = mmproj_meta.get("clip.projector_type") or mmproj_meta.get("clip.vision.projector_type")
    size, patch = mmproj_meta.get("clip.vision.image_size"), mmproj_meta.get("clip.vision.patch_size")
    if projector in FIXED_TOKENS:
        return FIXED_TOKENS[projector]
    if projector in MERGE_2X2 and patch:
        return math.ceil(max_pixels / (2 * int(patch)) ** 2)
    if projector in FIXED_GRID | {None} and size and patch:
        grid = (int(size) // int(patch)) ** 2
        return grid * 5 if chat_handler == "llava-1-6" else grid
    return UNKNOWN_IMAGE_TOKENS


def auto_n_ctx(prompt_tokens: int, page_tokens: int, max_tokens: int, n_ctx_train: int | None) -> int:
    """Round the sum up to a multiple of 256, at least 512, at most the training context."""
    needed = prompt_tokens + page_tokens + max_tokens + TEMPLATE_TOKENS
    size = max(512, -(-needed // 256) * 256)
    return min(size, n_ctx_train) if n_ctx_train else size


def resolve_n_ctx(cfg: ModelConfig, schema_raw: dict[str, Any], image: bool, max_pixels: int,
                  chat_handler: str | None = None) -> int:
    """``cfg.n_ctx`` if set, else the ``auto`` size for this model, schema and page size."""
    if cfg.n_ctx:
        return cfg.n_ctx
    return size_context(cfg.path, cfg.mmproj if image else None, prompt_schema(answer_schema(schema_raw)),
                        cfg.max_tokens, max_pixels, chat_handler, text_too=cfg.dual_view,
                        text_budget=text_tokens(cfg.read_pages))


def size_context(model: Path, mmproj: Path | None, shown_schema: dict[str, Any], max_tokens: int,
                 max_pixels: int, chat_handler: str | None = None, text_too: bool = False,
                 text_budget: int = TEXT_PAGE_TOKENS) -> int:
    """The ``auto`` context (a vocabulary-only load of the model: milliseconds)."""
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    train = gguf_metadata(model, (), arch_keys=("context_length",)).get("context_length")
    fixed = SYSTEM_PROMPT + json.dumps(shown_schema, ensure_ascii=False, separators=(",", ":"))
    with suppress_stdout_stderr(disable=False):
        vocab = llama_cpp.Llama(str(model), vocab_only=True, verbose=False)
    try:
        prompt = len(vocab.tokenize(fixed.encode(), add_bos=True, special=False))
    finally:
        vocab.close()
    if mmproj is None:
        page = text_budget
    else:
        keys = ("clip.projector_type", "clip.vision.projector_type", "clip.vision.image_size", "clip.vision.patch_size")
        page = image_tokens(gguf_metadata(mmproj, keys), max_pixels, chat_handler)
        if text_too:  # the dual view's text prompt must fit the same context
            page = max(page, TEXT_PAGE_TOKENS)
    return auto_n_ctx(prompt, page, max_tokens, int(train) if train else None)
