"""Decoding that guesses answer tokens ahead and lets the model check a run of them in one call.

An answer is mostly not free text: keys, quotes and commas the grammar dictates, and values copied
from the page.  So before each model call the next tokens are *drafted* without the model:

* **forced text**: the characters the grammar admits as the only continuation (the rest of a key,
  ``": "``, the rest of ``null`` or of the one printed amount that still fits), walked on a copy
  of the grammar; the optional space the grammar allows after punctuation is drafted the way this
  answer (or the last one) wrote it;
* **lookup**: the tokens that followed the answer's last few tokens in the earlier samples of this
  page, in the last answer, in the prompt (the page text) or earlier in this answer.

The pending token and the draft are evaluated in one batch with logits at every position; the
sampler then picks at each position exactly as one-at-a-time decoding would (same grammar, same
random draws in the same order) and the draft is kept up to the first token it does not pick,
which replaces the rest; the KV cache is cut back past them.  So a greedy answer is the plain
greedy answer, and a temperature sample is drawn from the same distribution with the same draws
(the sample at each position is compared with the draft: an exact equivalent of the standard
acceptance rule for a draft that proposes one token with certainty).  Up to rounding: llama.cpp
evaluates a batch with other kernels than a single step, and the logits differ by up to ~0.2 on
the Qwen 0.5B/1.5B Q4_K_M (measured), so where the model's two best tokens are that close either
run may take either; plain llama.cpp's own answer moves the same way with how its prompt was split
into batches.  ``sampling.divergence`` tells such a near-tie from a real difference.  A wrong draft
costs its batch positions: drafts are cut where the grammar would refuse them, and a lookup needs
three matching tokens.
"""

from __future__ import annotations

import ctypes
import string
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)  # llama_token_data
_PROBES = string.ascii_letters + string.digits + string.punctuation + " \n\t"
_NGRAMS = (4, 3)  # a shorter match drafts the wrong continuation too often to pay for its batch


@dataclass
class DecodeCounts:
    """What one answer's decoding did: answer tokens, tokens drafted and kept, model calls."""

    tokens: int = 0
    drafted: int = 0  # drafted tokens, all sources
    accepted: int = 0
    forced: int = 0  # of the drafted: from the grammar's forced text
    forced_accepted: int = 0
    calls: int = 0  # model evaluations after the prompt (one per token without drafts)
    looped: bool = False  # stopped: it repeated a row more often than the page prints it (model.loops)


class Probe:
    """The single-character tokens of a vocabulary, to ask a grammar which character comes next."""

    def __init__(self, llm: Any) -> None:
        import llama_cpp

        self.lib = llama_cpp
        chars, ids = [], []
        for char in _PROBES:
            tokens = llm.tokenize(char.encode(), add_bos=False, special=False)
            if len(tokens) == 1:
                chars.append(char)
                ids.append(tokens[0])
        self.chars = chars
        self.ids = np.array(ids, dtype=np.intc)
        self.token_of = dict(zip(chars, ids, strict=True))
        self.data = np.zeros(len(ids), dtype=TOKEN_DATA)

    def allowed(self, grammar: Any) -> list[str]:
        """The probe characters ``grammar`` admits next."""
        self.data["id"] = self.ids
        self.data["logit"] = 0.0
        array = self.lib.llama_token_data_array(
            data=self.data.ctypes.data_as(self.lib.llama_token_data_p), size=len(self.data), selected=-1,
            sorted=False)
        self.lib.llama_sampler_apply(grammar, ctypes.byref(array))
        return [c for c, logit in zip(self.chars, self.data["logit"], strict=True) if np.isfinite(logit)]

    def forced_text(self, grammar: Any, written: str, habit: str, limit: int) -> str:
        """The text the grammar admits as the only continuation (optional spaces as ``habit`` writes them)."""
        copy = self.lib.llama_sampler_clone(grammar)
        out: list[str] = []
        try:
            while len(out) < limit:
                allowed = self.allowed(copy)
                if len(allowed) == 1:
                    char = allowed[0]
                elif len(allowed) == 2 and " " in allowed:
                    other = allowed[0] if allowed[1] == " " else allowed[1]
                    char = " " if _space_after((written + "".join(out))[-1:], habit) else other
                else:
                    break
                self.lib.llama_sampler_accept(copy, self.token_of[char])
                out.append(char)
        finally:
            self.lib.llama_sampler_free(copy)
        return "".join(out)

    def valid_prefix(self, grammar: Any, tokens: Sequence[int]) -> int:
        """How many of ``tokens`` the grammar admits in a row."""
        copy = self.lib.llama_sampler_clone(grammar)
        one = np.zeros(1, dtype=TOKEN_DATA)
        array = self.lib.llama_token_data_array(
            data=one.ctypes.data_as(self.lib.llama_token_data_p), size=1, selected=-1, sorted=False)
        try:
            for n, token in enumerate(tokens):
                one["id"][0], one["logit"][0] = token, 0.0
                self.lib.llama_sampler_apply(copy, ctypes.byref(array))
                if not np.isfinite(one["logit"][0]):
                    return n
                self.lib.llama_sampler_accept(copy, token)
            return len(tokens)
        finally:
            self.lib.llama_sampler_free(copy)


def _space_after(char: str, habit: str) -> bool:
    """Whether the writer puts the grammar's optional space after ``char``: as it last did, else JSON's
    usual ``", "`` and ``": "``."""
    if char:
        at = habit.rfind(char, 0, len(habit) - 1)
        if at >= 0:
            return habit[at + 1] == " "
    return char in ",:"


class Lookup:
    """Where a run of tokens was seen before, and what followed it."""

    def __init__(self) -> None:
        self.index: dict[tuple[int, ...], int] = {}
        self.tokens: list[int] = []

    def add(self, tokens: Sequence[int]) -> None:
        """One more source; what follows a match never runs on into the next source."""
        if self.tokens:
            self.tokens.append(-1)
        start = len(self.tokens)
        self.tokens.extend(tokens)
        for n in _NGRAMS:
            for end in range(max(start, n), len(self.tokens)):  # later occurrences win: nearer context
                self.index[tuple(self.tokens[end - n:end])] = end

    def follow(self, tail: Sequence[int], limit: int) -> list[int]:
        for n in _NGRAMS:
            if len(tail) >= n:
                end = self.index.get(tuple(tail[-n:]))
                if end is not None:
                    following = self.tokens[end:end + limit]
                    return following[:following.index(-1)] if -1 in following else following
        return []


class Drafter:
    """Drafts for one answer: the grammar's forced text, else a lookup in what came before."""

    def __init__(self, llm: Any, probe: Probe, grammar: Any, sources: Sequence[Sequence[int]], habit: str,
                 limit: int) -> None:
        self.llm, self.probe, self.grammar, self.limit = llm, probe, grammar, limit
        self.habit = habit
        self.seen = Lookup()
        for source in sources:
            self.seen.add(source)
        self.answer: list[int] = []
        self.text = ""
        self.forced = False  # the last draft is the grammar's forced text

    def accept(self, token: int) -> None:
        self.answer.append(token)
        self.text += self.llm.detokenize([token]).decode("utf-8", errors="ignore")

    def draft(self, room: int) -> list[int]:
        limit = min(self.limit, room)
        if limit <= 0:
            return []
        forced = self.probe.forced_text(self.grammar, self.text, self.text or self.habit, 4 * limit)
        tokens = self.llm.tokenize(forced.encode(), add_bos=False, special=False)[:-1] if forced else []
        # the last token of forced text may merge with what follows it ('":' + ' "'): left to the model
        self.forced = True
        seen = self.seen.follow(self.answer, limit)
        seen = seen[:self._one_line(seen)]
        if len(seen) > len(tokens):
            tokens = seen[:self.probe.valid_prefix(self.grammar, seen)]
            self.forced = False
        return tokens[:limit]

    def _one_line(self, tokens: Sequence[int]) -> int:
        """How many of ``tokens`` stay on one line of the page and in one column: a value copied from the
        page ends there, and a draft that runs past it is wasted."""
        for n, token in enumerate(tokens):
            text = self.llm.detokenize([token])
            if b"\n" in text or b"  " in text:
                return n
        return len(tokens)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens two sequences share from the start."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def speculative_generate(llm: Any, sampler: Any, prompt: Sequence[int], probe: Probe,
                         sources: Sequence[Sequence[int]], habit: str, limit: int, counts: DecodeCounts,
                         stop: Any = None) -> Generator[int, Any, None]:
    """Llama.generate for a grammar-constrained answer, with drafts checked in batches.

    Keeps llama-cpp-python's bookkeeping (``input_ids``, ``n_tokens``, the KV cache) as its own
    ``generate`` does, so the next call reuses the longest cached prefix the same way.
    """
    tokens = list(prompt)
    cached = common_prefix(llm.input_ids[:llm.n_tokens], tokens)
    if not (cached == llm.n_tokens == len(tokens) and not llm._requires_eval):  # else: its logits are current
        cached = min(cached, len(tokens) - 1)  # the last prompt token is evaluated again for its logits
        if cached > 0 and llm._ctx.kv_cache_seq_rm(-1, cached, -1):
            llm.n_tokens = cached
        else:
            llm.reset()
        llm.eval(tokens[llm.n_tokens:])
    drafter = Drafter(llm, probe, sampler.grammar, [tokens[-4096:], *sources], habit, limit)
    pending = sampler.sample(llm._ctx, -1)
    if _stops(llm, stop, llm.n_tokens, -1):
        return
    while True:
        yield pending
        counts.tokens += 1
        drafter.accept(pending)
        draft = drafter.draft(llm._n_ctx - llm.n_tokens - 1)
        start = llm.n_tokens
        batch = [pending, *draft]
        _evaluate(llm, batch)
        counts.calls += 1
        counts.drafted += len(draft)
        counts.forced += len(draft) if drafter.forced else 0
        for i, guess in enumerate(draft):
            token = sampler.sample(llm._ctx, i)
            if token != guess:
                llm.n_tokens = start + i + 1
                llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)
                llm._requires_eval = True  # the context's logits are the batch's, not the last kept token's
                pending = token
                break
            counts.accepted += 1
            counts.forced_accepted += drafter.forced
            if _stops(llm, stop, start + i + 1, i):
                return
            yield guess
            counts.tokens += 1
            drafter.accept(guess)
        else:
            pending = sampler.sample(llm._ctx, len(draft))
        if _stops(llm, stop, llm.n_tokens, llm.n_tokens - start - 1):  # the pending token's logits
            return


def _stops(llm: Any, stop: Any, evaluated: int, idx: int) -> bool:
    """llama-cpp-python's stopping criteria, asked as its ``generate`` asks them: the tokens evaluated so far
    and the logits the next token was drawn from."""
    if stop is None:
        return False
    import llama_cpp

    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, idx), shape=(llm._n_vocab,))
    return bool(stop(llm.input_ids[:evaluated], logits))


def _evaluate(llm: Any, batch: list[int]) -> None:
    """One model call on ``batch`` after the cached tokens, with logits at every position."""
    n_past = llm.n_tokens
    llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
    llm._batch.set_batch(batch=batch, n_past=n_past, logits_all=True)
    llm._ctx.decode(llm._batch)
    llm.input_ids[n_past:n_past + len(batch)] = batch
    llm.n_tokens = n_past + len(batch)
    llm._requires_eval = False
