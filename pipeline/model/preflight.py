"""Checks before a model is loaded for real: its files, its chat handler, and that the grammar compiles.

The driver runs ``preflight`` once, before any page is read, so an unusable schema or a
broken GGUF fails the run at start-up with one line instead of failing every page.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

from pipeline.config.settings import ModelConfig
from pipeline.errors import ModelError, SchemaError, missing_model_message
from pipeline.model.gguf import gguf_metadata
from pipeline.schema.compiled import CompiledSchema
from pipeline.schema.grammar import answer_schema, kind_schema, schema_to_gbnf
from pipeline.schema.paths import kind_paths

# --chat-handler names -> llama_cpp.llama_chat_format class names.
CHAT_HANDLERS = {
    "mtmd": "MTMDChatHandler",
    "gemma4": "Gemma4ChatHandler",
    "llava-1-5": "Llava15ChatHandler",
    "llava-1-6": "Llava16ChatHandler",
    "qwen2.5-vl": "Qwen25VLChatHandler",
    "minicpm-v-2.6": "MiniCPMv26ChatHandler",
    "moondream": "MoondreamChatHandler",
    "nanollava": "NanoLlavaChatHandler",
    "llama3-vision-alpha": "Llama3VisionAlphaChatHandler",
    "obsidian": "ObsidianChatHandler",
}


def choose_chat_handler(model: Path, mmproj: Path, requested: str = "auto") -> str:
    """Pick the chat handler name; explicit names win, 'auto' reads the GGUF metadata."""
    if requested != "auto":
        if requested not in CHAT_HANDLERS:
            raise ModelError(f"unknown chat handler '{requested}' (choose from: auto, "
                             f"{', '.join(CHAT_HANDLERS)})")
        return requested
    meta = gguf_metadata(model, ("general.architecture", "tokenizer.chat_template"))
    proj = gguf_metadata(mmproj, ("clip.projector_type", "clip.vision.projector_type"))
    arch = str(meta.get("general.architecture", ""))
    if arch.startswith("gemma4"):
        return "gemma4"
    if meta.get("tokenizer.chat_template"):
        return "mtmd"
    projector = proj.get("clip.projector_type") or proj.get("clip.vision.projector_type")
    if projector in ("mlp", "mlp_norm", None):
        return "llava-1-5"
    raise ModelError(f"cannot choose a chat handler for {model} (projector '{projector}', no chat "
                     "template); pass --chat-handler")


def check_files(cfg: ModelConfig, needs_mmproj: bool) -> None:
    if not cfg.path.is_file():
        raise ModelError(missing_model_message(cfg.path))
    if not needs_mmproj:
        return
    if cfg.mmproj is None:
        raise ModelError("the VLM backend needs an mmproj (vision projector) GGUF: pass --mmproj PATH, "
                         "or use --backend text")
    if not cfg.mmproj.is_file():
        raise ModelError(f"mmproj file not found: {cfg.mmproj}. Pass --mmproj PATH to the model's "
                         "mmproj GGUF (it ships beside the model in its repository)")


def preflight(cfg: ModelConfig, schema: CompiledSchema, backend: str = "vlm") -> str | None:
    """Check, in the driver and before any page is read, that the model and grammar load.

    Loads only the vocabulary (milliseconds even for large models) and compiles the grammar
    against it, so an unusable schema or a broken GGUF fails the run at start-up.  Returns the
    chat handler name (None for the text backend, which uses the model's own chat template).
    """
    check_files(cfg, needs_mmproj=backend == "vlm")
    handler = None
    if backend == "vlm":
        assert cfg.mmproj is not None
        handler = choose_chat_handler(cfg.path, cfg.mmproj, cfg.chat_handler)
    gbnf = schema_to_gbnf(answer_schema(schema.raw))
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    quiet_native_logs(cfg.verbose)
    try:
        with suppress_stdout_stderr(disable=cfg.verbose):
            vocab_model = llama_cpp.Llama(str(cfg.path), vocab_only=True, verbose=cfg.verbose)
    except Exception as exc:
        raise load_error(cfg.path, exc) from None
    try:
        compile_grammar(vocab_model, gbnf)
    finally:
        vocab_model.close()
    return handler


def compile_grammar(llm: Any, gbnf: str) -> None:
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, gbnf.encode(), b"root")
    if not sampler:
        raise SchemaError("the schema's output grammar does not compile in llama.cpp")
    llama_cpp.llama_sampler_free(sampler)


_LOG_CALLBACK_SET = False


def quiet_native_logs(verbose: bool) -> None:
    """Route mtmd's native logging through llama-cpp-python's logger (silent unless verbose).

    llama-cpp-python only redirects llama.cpp's own log; mtmd prints every image it encodes.
    """
    global _LOG_CALLBACK_SET
    import llama_cpp._logger as logger
    import llama_cpp.mtmd_cpp as mtmd

    logger.set_verbose(verbose)
    if not _LOG_CALLBACK_SET:
        mtmd.mtmd_log_set(logger.llama_log_callback, ctypes.c_void_p(0))
        mtmd.mtmd_helper_log_set(logger.llama_log_callback, ctypes.c_void_p(0))
        _LOG_CALLBACK_SET = True


def load_error(path: Path, exc: BaseException) -> ModelError:
    """The one-line error of a model that llama.cpp cannot load."""
    return ModelError(f"cannot load model {path}: {' '.join(str(exc).split())[:200]}")


def grammar_of(schema: dict[str, Any], kind: str | None = None) -> tuple[dict[str, Any], str]:
    """The schema the model answers in (``answer_schema``) and its GBNF grammar; for a page of
    ``kind``, narrowed to the fields the schema says that kind has (``x-kind-fields``)."""
    answer = answer_schema(schema)
    fields = kind_paths(schema, "x-kind-fields").get(kind or "")
    if fields is not None:
        answer = kind_schema(answer, fields)
    return answer, schema_to_gbnf(answer)
