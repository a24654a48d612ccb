"""Grammar-constrained sampling that checks the grammar on the chosen token first.

llama-cpp-python's sampler chain runs the grammar over *every* vocabulary entry at every step;
with a 150k-token vocabulary that costs more than the model itself on small models.  llama.cpp's
own tools do it the other way round: pick a token from the raw logits, ask the grammar about
that one token, and only when it is rejected mask the whole vocabulary and pick again.  For
greedy decoding the result is identical (the best valid token either is the argmax or is found
by the full pass); for temperature sampling it is exact rejection sampling (a valid first draw
has probability p(t), a rejected one is redrawn from the masked distribution, so P(t) is
proportional to p(t) over valid tokens).  Repetition penalties are not applied: extraction runs
with ``repeat_penalty=1`` because JSON repeats keys by design.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.model.certainty import value_certainty
from pipeline.model.decode import TOKEN_DATA, DecodeCounts, Probe, speculative_generate
from pipeline.model.loops import LoopGuard, rows_closed
from pipeline.model.resample import Greedy, Redrawn, redraw

TRACE_TOP = 8


class GrammarFirstSampler:
    """Duck-types llama-cpp-python's ``LlamaSampler`` (``sample(ctx, idx)``, ``close()``)."""

    def __init__(self, vocab: Any, n_vocab: int, gbnf: str, temperature: float, seed: int,
                 top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.grammar = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not self.grammar:
            raise ValueError("grammar does not compile")
        self.n_vocab = n_vocab
        self.temperature = temperature
        self.top_k, self.top_p, self.min_p = top_k, top_p, min_p
        self.rng = np.random.default_rng(seed)
        self._one = np.zeros(1, dtype=TOKEN_DATA)
        self._all = np.zeros(n_vocab, dtype=TOKEN_DATA)
        self._all["id"] = np.arange(n_vocab, dtype=np.intc)
        self.fast_hits = 0
        self.full_passes = 0
        self.trace: list[tuple[int, dict[int, float]]] | None = None  # per token: (chosen, top logits), when asked
        # per token: (chosen, its probability at temperature 1 before the grammar's mask): model.certainty
        self.chosen: list[tuple[int, float]] = []

    def _apply(self, data: np.ndarray) -> None:
        array = self._lib.llama_token_data_array(
            data=data.ctypes.data_as(self._lib.llama_token_data_p), size=len(data), selected=-1, sorted=False)
        self._lib.llama_sampler_apply(self.grammar, ctypes.byref(array))

    def _allowed(self, token: int) -> bool:
        self._one["id"][0] = token
        self._one["logit"][0] = 0.0
        self._apply(self._one)
        return bool(np.isfinite(self._one["logit"][0]))

    def _pick(self, logits: np.ndarray) -> int:
        if self.temperature <= 0:
            return int(np.argmax(logits))
        scaled = logits.astype(np.float64) / self.temperature
        finite = np.isfinite(scaled)
        if not finite.any():
            return int(np.argmax(logits))
        order = np.argsort(-np.where(finite, scaled, -np.inf))[: self.top_k]
        order = order[np.isfinite(scaled[order])]
        probs = np.exp(scaled[order] - scaled[order[0]])
        probs /= probs.sum()
        keep = probs >= self.min_p * probs[0]
        cumulative = np.cumsum(probs)
        keep &= np.concatenate(([True], cumulative[:-1] < self.top_p))
        order, probs = order[keep], probs[keep] / probs[keep].sum()
        return int(self.rng.choice(order, p=probs))

    def sample(self, ctx: Any, idx: int) -> int:
        pointer = self._lib.llama_get_logits_ith(ctx.ctx, idx)
        logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        token = self._pick(logits)
        if self._allowed(token):
            self.fast_hits += 1
        else:
            self.full_passes += 1
            self._all["logit"] = logits
            self._all["p"] = 0.0
            self._apply(self._all)
            masked = self._all["logit"].copy()
            if not np.isfinite(masked).any():
                raise RuntimeError("the grammar allows no token here")
            token = self._pick(masked)
        self._lib.llama_sampler_accept(self.grammar, token)
        self.chosen.append((token, _probability(logits, token)))
        if self.trace is not None:
            top = np.argpartition(logits, -TRACE_TOP)[-TRACE_TOP:]
            self.trace.append((token, {**{int(t): float(logits[t]) for t in top}, token: float(logits[token])}))
        return token

    def accept(self, token: int) -> None:
        """Advance the grammar over a token written before this sampler took over (ValueError where the
        grammar does not allow it there: llama.cpp would abort the process on it)."""
        if not self._allowed(token):
            raise ValueError(f"the grammar does not allow token {token} here")
        self._lib.llama_sampler_accept(self.grammar, token)

    def close(self) -> None:
        if self.grammar:
            self._lib.llama_sampler_free(self.grammar)
            self.grammar = None

    def __del__(self) -> None:
        self.close()


def _probability(logits: np.ndarray, token: int) -> float:
    """softmax(logits)[token], without materialising the softmax (a 150k vocabulary: ~0.3 ms)."""
    top = float(logits.max())
    return float(np.exp(float(logits[token]) - top - np.log(np.exp(logits - top, dtype=np.float64).sum())))


def divergence(plain: list[tuple[int, dict[int, float]]], other: list[tuple[int, dict[int, float]]]) \
        -> tuple[int, float] | None:
    """Where two traced decodings of the same prompt first chose differently, and by how much the first
    one's logits preferred its token over the other's there (inf when the other was not among its top
    logits): a gap of a few hundredths is a tie that rounding decides, not a change of mind."""
    for n, ((a, logits), (b, _)) in enumerate(zip(plain, other, strict=False)):
        if a != b:
            return n, logits[a] - logits[b] if b in logits else float("inf")
    return None


def answer_certainty(llm: Any, text: str) -> dict[str, float]:
    """How sure the model was of each value of the answer its last call wrote (``model.certainty``)."""
    sampler = llm.last_sampler
    if sampler is None or not sampler.chosen:
        return {}
    tokens, probabilities = zip(*sampler.chosen, strict=True)
    return value_certainty(text, tokens, probabilities, lambda t: llm.detokenize([t], special=False))


def make_llama_class() -> Any:
    """A ``Llama`` whose grammar-constrained generations use ``GrammarFirstSampler``."""
    import llama_cpp

    class FastGrammarLlama(llama_cpp.Llama):  # type: ignore[misc]
        draft_tokens = 0  # most tokens drafted per model call (pipeline.model.decode); 0: one token per call
        trace_sampling = False  # keep each choice with the top logits it was made from (sampler.trace)
        decode_counts = DecodeCounts()
        _probe: Probe | None = None
        _answers: tuple[tuple[int, ...], list[list[int]]] = ((), [])  # (prompt, its earlier answers)
        _habit = ""  # the last answer's text: how this model spaces its JSON
        _page: tuple[tuple[int, ...], str] = ((), "")  # the last prompt and its text (what the page prints)
        last_sampler: GrammarFirstSampler | None = None  # the last grammar-constrained call's (its chosen tokens)
        prime: tuple[int, ...] = ()  # answer tokens the next grammar has already accepted (model.resample)

        greedy: Greedy | None = None  # the last greedy answer, kept to draw its values again

        def keep_greedy(self, text: str) -> None:
            """Remember the answer the last call wrote, greedily, with its prompt and tokens: its values
            in doubt can then be drawn again from where it wrote them (``redraw``)."""
            sampler = self.last_sampler
            self.greedy = Greedy(self._page[0], [t for t, _ in sampler.chosen], text) if sampler else None

        def redraw(self, text: str, paths: list[str], samples: int,
                   settings: Callable[[int], dict[str, Any]]) -> Redrawn | None:
            """``model.resample.redraw`` for the greedy answer ``text``; None when it is not the one kept."""
            if self.greedy is None or self.greedy.text != text:
                return None
            return redraw(self, self.greedy, paths, samples, settings)

        def read_on(self, text: str, settings: dict[str, Any]) -> tuple[str, Any] | None:
            """The answer ``text``, stopped in a loop, closed before its first row past the page's count,
            and the model's answer from there on (``model.loops.rows_closed``): (the text kept, the
            response that goes on from it); None where the rows cannot be closed."""
            prompt, page = self._page
            head = rows_closed(text, page)
            if head is None or not prompt:
                return None
            tokens = self.tokenize(head.encode("utf-8"), add_bos=False, special=False)
            self.prime = tuple(tokens)
            try:
                return head, self.create_completion(prompt=[*prompt, *tokens], **settings)
            finally:
                self.prime = ()

        def generate(self, tokens: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            grammar = kwargs.get("grammar")
            if grammar is None or self.draft_tokens <= 0 or kwargs.get("logits_processor"):
                self.decode_counts = DecodeCounts()
                yield from self._guarded(super().generate(tokens, **kwargs), tokens, self.decode_counts)
                return
            sampler = self._init_sampler(grammar=grammar, temp=kwargs.get("temp", 0.8), top_k=kwargs.get("top_k", 40),
                                         top_p=kwargs.get("top_p", 0.95), min_p=kwargs.get("min_p", 0.05))
            self._sampler = sampler
            if self._probe is None:
                self._probe = Probe(self)
            prompt = tuple(tokens)
            if self._answers[0] != prompt:
                self._answers = (prompt, [])
            self.decode_counts = counts = DecodeCounts()
            answer: list[int] = []
            try:
                for token in self._guarded(speculative_generate(self, sampler, prompt, self._probe, self._answers[1],
                                                                self._habit, self.draft_tokens, counts,
                                                                kwargs.get("stopping_criteria")), prompt, counts):
                    answer.append(token)
                    yield token
            finally:
                self._answers[1].append(answer)
                self._habit = self.detokenize(answer).decode("utf-8", errors="ignore")

        def _guarded(self, stream: Any, prompt: Any, counts: DecodeCounts) -> Any:
            """``stream`` until the answer loops past what the page prints (``model.loops``): then the
            end-of-text token, so the answer ends there like one cut at max_tokens."""
            known = self._page[0]
            if not known or tuple(prompt[:len(known)]) != known:  # an answer read on keeps its page's text
                words = [t for t in prompt if 0 <= t < self._n_vocab]  # an image's embeddings are no tokens
                self._page = (tuple(prompt), self.detokenize(words).decode("utf-8", errors="ignore"))
            guard = LoopGuard(self._page[1])
            answer: list[int] = []
            for token in stream:
                answer.append(token)
                if guard.due(len(answer)) and guard.loops(self.detokenize(answer).decode("utf-8", errors="ignore")):
                    counts.looped = True
                    yield self.token_eos()
                    return
                yield token

        def _init_sampler(self, **kwargs: Any) -> Any:  # type: ignore[override]  # keywords only upstream
            grammar = kwargs.get("grammar")
            if grammar is None:
                return super()._init_sampler(**kwargs)
            sampler = GrammarFirstSampler(self._model.vocab, self._n_vocab, grammar._grammar,
                                          kwargs.get("temp", 0.8), self._seed, top_k=kwargs.get("top_k", 40),
                                          top_p=kwargs.get("top_p", 0.95), min_p=kwargs.get("min_p", 0.05))
            sampler.trace = [] if self.trace_sampling else None
            for token in self.prime:  # a value drawn again continues the answer these tokens began
                sampler.accept(token)
            self.last_sampler = sampler
            return sampler

    return FastGrammarLlama
