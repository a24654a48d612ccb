"""llama.cpp backends (llama-cpp-python): a vision-language model, or a text model.

One instance lives in each Ray actor and loads the model once.  For a VLM the multimodal chat
handler is chosen from the GGUF metadata (a model with its own chat template gets the generic
mtmd handler; a bare LLaVA-1.5 model the LLaVA template) and can be overridden by name.  A
text model reads the page's text layer or OCR instead of the image.
"""

from __future__ import annotations

import dataclasses
import hashlib
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

from pipeline.config.settings import ModelConfig, RunConfig, default_of
from pipeline.model.base import ROWS_CLOSED, USAGE, Backend, Completion, PageInput
from pipeline.model.context import resolve_n_ctx
from pipeline.model.preflight import (
    CHAT_HANDLERS,
    check_files,
    compile_grammar,
    grammar_of,
    load_error,
    quiet_native_logs,
)
from pipeline.model.printed import printed_grammar
from pipeline.model.prompt import prompt_schema, text_messages, vlm_messages
from pipeline.model.sampling import answer_certainty, make_llama_class
from pipeline.schema.compiled import CompiledSchema, compile_schema


class LlamaBackend(Backend):
    """A GGUF model run in-process by llama.cpp, its answers grammar-constrained to the schema."""

    needs_text = False

    def __init__(self, cfg: ModelConfig, schema: CompiledSchema, model_sha256: str,
                 chat_handler: Any = None, max_pixels: int = default_of("max_pixels")) -> None:
        super().__init__(schema, retries=cfg.retries, samples=cfg.samples, dual_view=cfg.dual_view)
        quiet_native_logs(cfg.verbose)
        self.cfg = cfg
        self.name = cfg.path.name
        self.sha256 = model_sha256
        self.answer_schema, self.gbnf = grammar_of(schema.raw)
        self.prompt_schema = prompt_schema(self.answer_schema)
        self.n_ctx = resolve_n_ctx(cfg, schema.raw, not self.needs_text, max_pixels,
                                   getattr(self, "chat_handler", None))
        llama_class = make_llama_class()  # grammar checked on the chosen token first: see sampling.py
        try:
            self.llm = llama_class(
                model_path=str(cfg.path), chat_handler=chat_handler, n_ctx=self.n_ctx,
                n_threads=cfg.n_threads, n_threads_batch=cfg.n_threads,
                n_gpu_layers=cfg.n_gpu_layers, seed=cfg.seed, verbose=cfg.verbose)
        except Exception as exc:
            raise load_error(cfg.path, exc) from None
        compile_grammar(self.llm, self.gbnf)
        self._kinds: dict[str | None, tuple[dict[str, Any], str]] = {}  # a page kind's answer schema, grammar
        self.llm.draft_tokens = cfg.draft_tokens  # drafted answer tokens per model call: model/decode.py

    @abstractmethod
    def messages(self, page: PageInput) -> list[dict[str, Any]]:
        """The chat messages for one page."""

    def sampling(self, attempt: int, gbnf: str | None = None) -> dict[str, Any]:
        """Grammar and sampling settings: greedy first, then a temperature ladder (0.3, 0.6, 0.9, 1.0)."""
        from llama_cpp import LlamaGrammar

        temperature = self.cfg.temperature if attempt == 0 else max(self.cfg.temperature, min(1.0, 0.3 * attempt))
        return {"grammar": LlamaGrammar.from_string(gbnf or self.gbnf, verbose=False), "temperature": temperature,
                "seed": self.cfg.seed + attempt, "max_tokens": self.cfg.max_tokens,
                "repeat_penalty": 1.0}  # JSON repeats keys by design: never penalise them

    def execute(self, page: PageInput, attempt: int) -> Completion:
        # Text prompts: llama-cpp-python reuses the longest cached token prefix by itself, so the
        # system prompt + schema are evaluated once per worker and a page's text once per page.
        return self.chat(self.messages(page), attempt, self.page_grammar(page))

    def kind_grammar(self, page: PageInput) -> tuple[dict[str, Any], str]:
        """The answer schema and grammar for the page's kind: the schema's, or where the schema lists
        the fields of that kind (``x-kind-fields``), those fields only (the rest null).  The prompt
        stays the same for every kind, so the instruction in the KV cache serves them all."""
        kind = page.kinds[0] if page.kinds else None
        if kind not in self._kinds:
            answer, gbnf = grammar_of(self.schema.raw, kind)
            if gbnf != self.gbnf:
                compile_grammar(self.llm, gbnf)
            self._kinds[kind] = (answer, gbnf)
        return self._kinds[kind]

    def page_grammar(self, page: PageInput) -> str:
        return self.kind_grammar(page)[1]

    def chat(self, messages: list[dict[str, Any]], attempt: int, gbnf: str | None = None) -> Completion:
        before = self.perf()
        self.llm.last_sampler = None
        response = self.llm.create_chat_completion(messages=messages, **self.sampling(attempt, gbnf))  # type: ignore[arg-type]
        choice = response["choices"][0]  # type: ignore[index]
        completion = _completion(choice["message"]["content"], response, choice, self.llm.decode_counts,
                                 self.perf() - before)
        if completion.finish_reason == "loop":
            completion = self._read_on(completion, attempt, gbnf)
        if attempt == 0:
            self.llm.keep_greedy(completion.text)
            # an answer read on past a loop: its tokens are in two calls; the page is flagged as cut anyway
            return self.with_certainty(completion) if completion.finish_reason != ROWS_CLOSED else completion
        return completion

    def _read_on(self, cut: Completion, attempt: int, gbnf: str | None) -> Completion:
        """An answer stopped in a loop, its rows closed where they outran the page and the rest written
        on from there (``model.loops.rows_closed``, finish_reason ``rows_closed``); ``cut`` itself where
        that cannot be done (it is then salvaged as a cut answer)."""
        before = self.perf()
        settings = {**self.sampling(attempt, gbnf), "max_tokens": max(16, self.cfg.max_tokens - cut.completion_tokens)}
        try:
            read = self.llm.read_on(cut.text, settings)
        except ValueError:  # the grammar refused the closed rows: the cut answer stands
            return cut
        if read is None:
            return cut
        head, response = read
        choice = response["choices"][0]
        more = _completion(head + (choice["text"] or ""), response, choice, self.llm.decode_counts,
                           self.perf() - before)
        finish = ROWS_CLOSED if more.finish_reason == "stop" else more.finish_reason
        summed = {key: getattr(cut, key) + getattr(more, key) for key in USAGE if key != "prompt_tokens"}
        return dataclasses.replace(more, finish_reason=finish, prompt_tokens=cut.prompt_tokens, **summed)

    def with_certainty(self, completion: Completion) -> Completion:
        """The greedy answer with how sure the model was of each value (``model.certainty``)."""
        return dataclasses.replace(completion, certainty=answer_certainty(self.llm, completion.text))

    def perf(self) -> Perf:
        """llama.cpp's running totals for this context (read before and after a call)."""
        import llama_cpp

        data = llama_cpp.llama_perf_context(self.llm._ctx.ctx)
        return Perf(data.t_p_eval_ms, data.t_eval_ms, data.n_p_eval)

    def close(self) -> None:
        self.llm.close()


@dataclass(frozen=True)
class Perf:
    """llama.cpp's counters: milliseconds evaluating prompts (and drafted batches) and decoding, and
    the prompt tokens it evaluated (those reused from its cache are not)."""

    prompt_ms: float
    decode_ms: float
    prompt_tokens: int

    def __sub__(self, other: Perf) -> Perf:
        return Perf(self.prompt_ms - other.prompt_ms, self.decode_ms - other.decode_ms,
                    self.prompt_tokens - other.prompt_tokens)


def _completion(text: str | None, response: Any, choice: Any, counts: Any, perf: Perf) -> Completion:
    """The answer with its token counts (``counts``: the call's ``model.decode.DecodeCounts``) and timings."""
    usage = response.get("usage") or {}
    return Completion(text=text or "", prompt_tokens=int(usage.get("prompt_tokens", 0)),
                      completion_tokens=int(usage.get("completion_tokens", 0)),
                      finish_reason="loop" if counts.looped else choice.get("finish_reason"),
                      drafted_tokens=counts.drafted,
                      forced_tokens=counts.forced, accepted_tokens=counts.accepted, decode_calls=counts.calls,
                      prompt_eval_ms=round(perf.prompt_ms, 2), decode_ms=round(perf.decode_ms, 2),
                      prompt_tokens_evaluated=max(0, perf.prompt_tokens))


class LlamaVLMBackend(LlamaBackend):
    """A vision-language GGUF + mmproj: reads the page image.

    The multimodal chat handlers clear the KV cache on every call, so each sample of a page
    would encode the image and evaluate the whole prompt again.  The first sample goes through
    the handler; the others continue from its evaluated prompt (image included) and only
    decode: K samples cost one image encoding and one prompt evaluation.
    """

    def __init__(self, cfg: ModelConfig, schema: CompiledSchema, model_sha256: str,
                 chat_handler: str, max_pixels: int = default_of("max_pixels")) -> None:
        from llama_cpp import llama_chat_format

        check_files(cfg, needs_mmproj=True)
        self.chat_handler = chat_handler
        handler_cls = getattr(llama_chat_format, CHAT_HANDLERS[chat_handler])
        handler = handler_cls(clip_model_path=str(cfg.mmproj), verbose=cfg.verbose)
        super().__init__(cfg, schema, model_sha256, chat_handler=handler, max_pixels=max_pixels)
        self._prompt: tuple[bytes, list[int]] | None = None  # (page image digest, its prompt tokens)

    def messages(self, page: PageInput) -> list[dict[str, Any]]:
        return vlm_messages(self.prompt_schema, page.png)

    def execute(self, page: PageInput, attempt: int) -> Completion:
        digest = hashlib.sha256(page.png).digest()
        if attempt > 0 and self._prompt is not None and self._prompt[0] == digest and self._rewind(self._prompt[1]):
            before = self.perf()
            response = self.llm.create_completion(prompt=self._prompt[1],
                                                  **self.sampling(attempt, self.page_grammar(page)))
            choice = response["choices"][0]  # type: ignore[index]
            return _completion(choice["text"], response, choice, self.llm.decode_counts, self.perf() - before)
        self._prompt = None
        completion = super().execute(page, attempt)
        # The handler evaluated the prompt into positions [0, prompt_tokens) and left their ids
        # (image positions included) in input_ids, which is what llama's prefix match compares.
        self._prompt = (digest, self.llm.input_ids[:completion.prompt_tokens].tolist())
        return completion

    def execute_text_view(self, page: PageInput) -> Completion:
        """The same model reads the page's text layer (or OCR) with the text prompt, greedily."""
        self._prompt = None  # this call replaces the image prompt in the KV cache
        return self.chat(text_messages(self.prompt_schema, page.text), 0, self.page_grammar(page))

    def _rewind(self, prompt: list[int]) -> bool:
        """Drop the last answer from the KV cache, keeping the prompt minus its last token.

        llama's own prefix match then re-evaluates that one token and samples.  False when the
        cache cannot be cut (recurrent models): then the full handler path runs again.
        """
        keep = len(prompt) - 1
        if keep <= 0 or not self.llm._ctx.kv_cache_seq_rm(-1, keep, -1):
            return False
        self.llm.n_tokens = keep
        return True


class LlamaTextBackend(LlamaBackend):
    """A text GGUF: reads the page's text layer (or its OCR), laid out as on the page."""

    needs_text = True

    def __init__(self, cfg: ModelConfig, schema: CompiledSchema, model_sha256: str) -> None:
        check_files(cfg, needs_mmproj=False)
        super().__init__(cfg, schema, model_sha256)
        self._page_gbnf: tuple[tuple[str, str | None], str] = (("", None), self.gbnf)

    def messages(self, page: PageInput) -> list[dict[str, Any]]:
        return text_messages(self.prompt_schema, page.text)

    def execute(self, page: PageInput, attempt: int) -> Completion:
        return self.chat(self.messages(page), attempt, self.page_grammar(page))

    def resample(self, page: PageInput, text: str, paths: list[str]) -> tuple[list[Completion], str] | None:
        """The other samples as the greedy answer ``text`` with its values at ``paths`` drawn again
        (``model.resample``): a few tokens a value instead of a whole answer each."""
        before = self.perf()
        redrawn = self.llm.redraw(text, paths, self.samples, lambda k: self.sampling(k, self.page_grammar(page)))
        if redrawn is None:
            return None
        spent = self.perf() - before
        usage = Completion(redrawn.texts[0], completion_tokens=redrawn.tokens, prompt_eval_ms=round(spent.prompt_ms, 2),
                           decode_ms=round(spent.decode_ms, 2), prompt_tokens_evaluated=max(0, spent.prompt_tokens))
        return [usage, *(Completion(t) for t in redrawn.texts[1:])], redrawn.note()

    def page_grammar(self, page: PageInput) -> str:
        """The grammar for a page's kind: with ``--amounts printed``, its amount fields limited to the
        numbers the page prints (one grammar per page, kept for the page's other samples)."""
        answer, gbnf = self.kind_grammar(page)
        if self.cfg.amounts != "printed":
            return gbnf
        key = (page.text, page.kinds[0] if page.kinds else None)
        if self._page_gbnf[0] != key:
            self._page_gbnf = (key, printed_grammar(answer, self.schema.raw, page.text) or gbnf)
        return self._page_gbnf[1]


def make_backend(cfg: RunConfig, schema_raw: dict[str, Any], model_sha256: str) -> LlamaBackend:
    """The backend a worker runs: the VLM or the text model, as the resolved config says."""
    schema = compile_schema(schema_raw, str(cfg.schema_path))
    if cfg.backend == "vlm":
        if cfg.chat_handler is None:
            # a caller's mistake, not a user's: resolve.complete() always sets it for the VLM
            raise RuntimeError("the VLM backend needs a chat handler: run 'complete' on the config first")
        return LlamaVLMBackend(cfg.model, schema, model_sha256, cfg.chat_handler, cfg.max_pixels)
    return LlamaTextBackend(cfg.model, schema, model_sha256)
