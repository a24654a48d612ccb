"""Sampling one value again instead of a whole answer (``--sampling values``).

A vote of whole answers re-writes every key, every row and every description to find out whether
the model could have read one date differently: on a CPU each extra answer costs as much as the
first.  The greedy answer's tokens and its prompt are still in llama.cpp's cache when the page is
settled, so a value in doubt can be drawn again from the point where the greedy answer began it:
the cache keeps everything before it, the grammar is primed with the greedy tokens before it, and
decoding stops as soon as the value is complete: a few tokens per value instead of a whole answer.
Each such draw sees the greedy answer before the value (what a temperature sample also conditions
on, up to that point), so it answers "what else would the model write here", which is what the vote
asks of it.  Values are drawn last-first: each draw then starts from a prefix already in the cache.

This module holds the text side (where a value starts in the tokens, when a draw has written a whole
value, the sample texts that go to the vote); ``model.llama`` drives llama.cpp.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from pipeline.model.certainty import value_spans

_SCALAR = re.compile(r"-?\d[\d.eE+-]*|true|false|null")
_SPACE = " \t\r\n"


@dataclass(frozen=True)
class Spot:
    """Where a value of the greedy answer is drawn again from: the answer's first ``token`` tokens are
    kept (their text ends at ``kept``); the structure between there and the value (a key's closing
    quote, the colon) is ``between``; the greedy value is ``text[start:end]``."""

    path: str
    token: int
    kept: int
    between: str
    start: int
    end: int


def spots(text: str, pieces: list[str], paths: list[str]) -> list[Spot]:
    """The spots of ``paths`` in ``text`` (the greedy answer; ``pieces``: its tokens' text, which
    must spell it), last first.  Paths the answer has no value for (a row it did not write) are left
    out; an empty list when the tokens do not spell the text."""
    if "".join(pieces) != text:
        return []
    try:
        spans = value_spans(text)
    except (ValueError, IndexError):
        return []
    starts, at = [], 0
    for piece in pieces:
        starts.append(at)
        at += len(piece)
    out = []
    for path in dict.fromkeys(paths):
        if path not in spans:
            continue
        start, end = spans[path]
        token = max(i for i, s in enumerate(starts) if s <= start)
        out.append(Spot(path, token, starts[token], text[starts[token]:start], start, end))
    return sorted(out, key=lambda s: s.start, reverse=True)


def drawn_value(spot: Spot, written: str) -> str | None:
    """The whole value a draw wrote (``written``: its text from ``spot.kept`` on), or None while it
    has not finished one.  The grammar lets the draw space the structure before the value otherwise
    than the greedy answer did; only whitespace may differ."""
    pos = 0
    for char in spot.between:
        if char in _SPACE:
            continue
        while pos < len(written) and written[pos] in _SPACE:
            pos += 1
        if pos >= len(written) or written[pos] != char:
            return None
        pos += 1
    while pos < len(written) and written[pos] in _SPACE:
        pos += 1
    if pos >= len(written):
        return None
    if written[pos] == '"':
        try:
            _, end = json.decoder.scanstring(written, pos + 1)  # type: ignore[attr-defined]
        except ValueError:
            return None
        return written[pos:end]
    match = _SCALAR.match(written, pos)
    if match is None or match.end() >= len(written):  # a number may go on until a delimiter follows
        return None
    return match.group()


def sample_texts(text: str, drawn: dict[str, tuple[Spot, list[str]]], samples: int) -> list[str]:
    """The ``samples`` answers the vote gets: the greedy ``text`` with, in the k-th, each value drawn
    again replaced by its k-th draw (a value drawn fewer times keeps the greedy one there)."""
    out = []
    for k in range(samples):
        new = text
        for spot, values in sorted(drawn.values(), key=lambda item: item[0].start, reverse=True):
            if k < len(values):
                new = new[:spot.start] + values[k] + new[spot.end:]
        out.append(new)
    return out


def settled_early(greedy: str, values: list[str], draws: int) -> bool:
    """Whether the draws left could not change the vote's winner for this value: the greedy value and
    every draw so far agree, and they outnumber the draws left (with 3 samples: one agreeing draw)."""
    return all(v == greedy for v in values) and len(values) + 1 > draws - len(values)


@dataclass(frozen=True)
class Greedy:
    """A greedy answer as llama.cpp wrote it: its prompt's tokens, its own, its text."""

    prompt: tuple[int, ...]
    tokens: list[int]
    text: str


@dataclass(frozen=True)
class Redrawn:
    """The answers for the vote (the greedy one excluded) and what drawing them cost."""

    texts: list[str]
    values: int  # values drawn again
    draws: int
    tokens: int  # answer tokens the draws decoded
    unfinished: int  # draws that wrote no whole value within their limit (the greedy value stands in)
    changed: list[str]  # paths where a draw wrote another value than the greedy answer

    def note(self) -> str:
        changed = f", other values for {', '.join(self.changed[:5])}" if self.changed else ", all as the greedy answer"
        unfinished = f", {self.unfinished} unfinished" if self.unfinished else ""
        return f"{self.values} values drawn again ({self.draws} draws, {self.tokens} tokens{unfinished}{changed})"


def redraw(llm: Any, greedy: Greedy, paths: list[str], samples: int,
           settings: Callable[[int], dict[str, Any]]) -> Redrawn | None:
    """Draw each value of ``paths`` up to ``samples - 1`` more times from where ``greedy`` wrote it
    (``llm``: a ``FastGrammarLlama`` whose cache holds the greedy answer; ``settings(k)``: the grammar
    and sampling of the k-th sample, as for a whole answer).  None when no path can be drawn (the
    tokens do not spell the text: a drafted answer; or no path is a value of it)."""
    pieces, data, before = [], b"", ""
    for token in greedy.tokens:
        data += llm.detokenize([token], special=False)
        now = data.decode("utf-8", errors="ignore")
        pieces.append(now[len(before):])
        before = now
    found = spots(greedy.text, pieces, paths)
    if not found:
        return None
    starts = [0, *accumulate(len(p) for p in pieces)][:-1]
    drawn: dict[str, tuple[Spot, list[str]]] = {}
    draws = tokens = unfinished = 0
    changed = []
    for spot in found:
        own = greedy.text[spot.start:spot.end]
        width = sum(1 for start in starts[spot.token:] if start < spot.end)  # the greedy value's tokens
        values: list[str] = []
        for k in range(1, samples):
            if settled_early(own, values, samples - 1):
                break
            value, used = _draw(llm, greedy, spot, settings(k), 2 * width + 16)
            draws, tokens = draws + 1, tokens + used
            if value is None:
                unfinished += 1
                break
            values.append(value)
        drawn[spot.path] = (spot, values)
        if any(v != own for v in values):
            changed.append(spot.path)
    return Redrawn(sample_texts(greedy.text, drawn, samples - 1), len(found), draws, tokens, unfinished,
                   sorted(changed))


def _draw(llm: Any, greedy: Greedy, spot: Spot, setting: dict[str, Any], limit: int) -> tuple[str | None, int]:
    """One draw of the value at ``spot``: (the value, or None if unfinished after ``limit`` tokens; tokens)."""
    prefix = greedy.tokens[:spot.token]
    kept = llm.detokenize(prefix, special=False)
    llm.prime = tuple(prefix)
    llm.set_seed(setting["seed"])
    stream = llm.generate([*greedy.prompt, *prefix], temp=setting["temperature"], top_k=40, top_p=0.95,
                          min_p=0.05, repeat_penalty=setting.get("repeat_penalty", 1.0), grammar=setting["grammar"])
    out: list[int] = []
    try:
        for token in stream:
            if token == llm.token_eos():
                break
            out.append(token)
            written = (kept + llm.detokenize(out, special=False)).decode("utf-8", errors="ignore")[spot.kept:]
            value = drawn_value(spot, written)
            if value is not None or len(out) >= limit:
                return value, len(out)
        return None, len(out)
    finally:
        stream.close()
        llm.prime = ()
