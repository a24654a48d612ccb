"""How sure the greedy answer was of each value: the probability of its least likely token.

A temperature sample disagrees with the greedy answer where the greedy choice was close (a date's day
the model gave 0.55 against 0.40 for another): the greedy answer's own token probabilities say where
a vote could change something before any other sample is drawn.  Adaptive sampling draws the other
samples for a page with such a value (``run.page``); a value chosen with a probability near 1 is one
no temperature of the ladder is likely to move.  The probability is the model's, over its whole
vocabulary at temperature 1, before the grammar's mask: a token the grammar had to refuse the model's
first choice for is unsure too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

_SCALAR = re.compile(r"-?\d[\d.eE+-]*|true|false|null")


def value_spans(text: str) -> dict[str, tuple[int, int]]:
    """Each leaf value's path (``seller.name``, ``line_items[0].amount``) and its [start, end) in
    ``text``, a JSON object as the model wrote it; a string's span includes its quotes."""
    spans: dict[str, tuple[int, int]] = {}
    pos = 0

    def skip() -> None:
        nonlocal pos
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1

    def value(path: str) -> None:
        nonlocal pos
        skip()
        opening = text[pos]
        if opening in "{[":
            pos += 1
            closing, n = ("}" if opening == "{" else "]"), 0
            skip()
            while text[pos] != closing:
                if opening == "{":
                    key, pos = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
                    skip()
                    pos += 1  # the colon
                    value(f"{path}.{key}" if path else key)
                else:
                    value(f"{path}[{n}]")
                    n += 1
                skip()
                if text[pos] == ",":
                    pos += 1
                    skip()
            pos += 1
            return
        start = pos
        if opening == '"':
            _, pos = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
        else:
            match = _SCALAR.match(text, pos)
            if match is None:
                raise ValueError(f"not JSON at {pos}")
            pos = match.end()
        spans[path] = (start, pos)

    value("")
    return spans


def value_certainty(text: str, tokens: Sequence[int], probabilities: Sequence[float],
                    piece: Callable[[int], bytes]) -> dict[str, float]:
    """Per leaf value, the probability of its least likely token (``piece``: a token's bytes).

    Empty when the tokens do not spell ``text`` (a drafted answer, a stripped one) or it is not JSON:
    no figure is better than a figure for the wrong value."""
    if len(tokens) != len(probabilities):
        return {}
    starts: list[int] = []
    written = b""
    for token in tokens:
        starts.append(len(written.decode("utf-8", errors="ignore")))
        written += piece(token)
    if written.decode("utf-8", errors="ignore") != text:
        return {}
    try:
        spans = value_spans(text)
    except (ValueError, IndexError):
        return {}
    ends = [*starts[1:], len(text)]
    out: dict[str, float] = {}
    for path, (start, end) in spans.items():
        touching = [p for p, s, e in zip(probabilities, starts, ends, strict=True) if s < end and e > start]
        if touching:
            out[path] = round(min(touching), 4)
    return out
