"""A page's words, indexed for looking values up: spans of neighbouring words on a line, each
read as an amount and as a date once, and the page's text folded for text lookups."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from pipeline.consensus.normalize import date_order, month_readings, normalize_amount, normalize_date
from pipeline.render.textlayer import Word, lines_of
from pipeline.text import alnum, fold, tokens

MAX_SPAN = 3  # "1 234,56", "EUR 12.00", "23. März 2026": a printed value is at most three words
MAX_DATE_SPAN = 5  # but a date is up to five: "15 de julio de 2025", "2025 m. birželio 2 d." (CLDR's long forms)


@dataclass(frozen=True)
class Span:
    text: str
    bbox: tuple[float, float, float, float]
    words: int
    line: int = 0  # the visual line it is on, counted from the top of the page


def split_words(words: Sequence[Word]) -> list[Word]:
    """OCR returns a text line as one "word"; split it at spaces, each part getting its share of
    the box by characters (a PDF's words have no spaces and pass through)."""
    out: list[Word] = []
    for x0, y0, x1, y1, text in words:
        parts = [(m.start(), m.group()) for m in re.finditer(r"\S+", text)]
        if len(parts) <= 1:
            out.extend([(x0, y0, x1, y1, parts[0][1])] if parts else [])
            continue
        per_char = (x1 - x0) / max(1, len(text))
        out.extend((x0 + start * per_char, y0, x0 + (start + len(part)) * per_char, y1, part)
                   for start, part in parts)
    return out


def union(words: Sequence[Word]) -> tuple[float, float, float, float]:
    return (round(min(w[0] for w in words), 1), round(min(w[1] for w in words), 1),
            round(max(w[2] for w in words), 1), round(max(w[3] for w in words), 1))


@dataclass
class PageIndex:
    words: list[Word]
    spans: list[Span] = field(default_factory=list)

    @classmethod
    def build(cls, words: Sequence[Word]) -> PageIndex:
        split = split_words(words)
        lines = lines_of(split)
        ordered = [w for line in lines for w in line]
        return cls(ordered, _spans(lines, range(1, MAX_SPAN + 1)))

    @cached_property
    def amounts(self) -> list[tuple[float, Span]]:
        out = []
        for span in self.spans:  # "GST 6%" is a rate, not six of anything ("GS106%" no total of 106)
            if re.search(r"\d", span.text) and len(re.sub(r"\D", "", span.text)) <= 15 and "%" not in span.text:
                value = normalize_amount(span.text)
                if value is not None:
                    out.append((abs(value), span))
        return out

    @cached_property
    def lines(self) -> list[list[Word]]:
        """The page's words by visual line: built once for the rules that read a page line by line."""
        return lines_of(self.words)

    @cached_property
    def word_lines(self) -> dict[str, set[int]]:
        """Each word, folded, and the visual lines it is printed on (where a row's text is)."""
        found: dict[str, set[int]] = {}
        for span in self.spans:
            if span.words == 1:
                found.setdefault(fold(span.text), set()).add(span.line)
        return found

    @cached_property
    def rates(self) -> frozenset[float]:
        """The percentages the page prints ("19 %", "GST @6%"), above 0 and below 100."""
        found = set()
        for span in self.spans:
            if span.words <= 2:
                for m in re.finditer(r"(?<![\d.,])(\d{1,2}(?:[.,]\d{1,3})?)\s?%", span.text):
                    rate = float(m.group(1).replace(",", "."))
                    found |= {rate} if 0 < rate < 100 else set()
        return frozenset(found)

    @cached_property
    def line_amounts(self) -> list[frozenset[float]]:
        """The amounts printed on each visual line (a row of a table is one line)."""
        lines: dict[int, set[float]] = {}
        for amount, span in self.amounts:
            lines.setdefault(span.line, set()).add(round(amount, 6))
        return [frozenset(found) for _, found in sorted(lines.items())]

    @cached_property
    def dates(self) -> list[tuple[set[str], Span]]:
        out = []
        longer = [span for span in _spans(self.lines, range(MAX_SPAN + 1, MAX_DATE_SPAN + 1))
                  if not span.text.split(" ", 1)[0].isalpha()]  # a date starts with a number
        for span in self.spans + longer:
            if re.search(r"\d", span.text):
                texts = _date_texts(span.text)
                found = {d for text in texts for first in (True, False) if (d := normalize_date(text, first))}
                found.update(d for text in texts for d in month_readings(text))  # "listopada": hr or pl
                if found:
                    out.append((found, span))
        return out

    @cached_property
    def date_order(self) -> bool | None:
        """The order the page prints its numeric dates in (``consensus.normalize.date_order``)."""
        return date_order(span.text for _, span in self.dates)

    @cached_property
    def printed_dates(self) -> set[str]:
        """The dates the page prints, each numeric one read in the page's own order: day first,
        unless the page's unambiguous dates ("07/13/2018") say month first.  ``dates`` keeps both
        readings of "09.07.2018" for looking a value up; a repair choosing among the printed
        dates must not count one date twice."""
        dayfirst = self.date_order is not False
        return {d for _, span in self.dates for text in _date_texts(span.text) if (d := normalize_date(text, dayfirst))}

    @cached_property
    def folded(self) -> tuple[str, list[int]]:
        """The page's words folded and joined by single spaces, and the word each character is from."""
        text: list[str] = []
        owner: list[int] = []
        for i, w in enumerate(self.words):
            word = fold(w[4]) or w[4].casefold()
            if text:
                text.append(" ")
                owner.append(i)
            text.append(word)
            owner.extend([i] * len(word))
        return "".join(text), owner

    @cached_property
    def compact(self) -> tuple[str, list[int]]:
        """Letters and digits only (punctuation and spaces dropped), and the word of each character."""
        text: list[str] = []
        owner: list[int] = []
        for i, w in enumerate(self.words):
            letters = alnum(w[4])
            text.append(letters)
            owner.extend([i] * len(letters))
        return "".join(text), owner

    @cached_property
    def tokens(self) -> dict[str, int]:
        """Each letters-and-digits token and the first word it occurs in."""
        out: dict[str, int] = {}
        for i, w in enumerate(self.words):
            for token in tokens(w[4]):
                out.setdefault(token, i)
        return out


def _spans(lines: Sequence[Sequence[Word]], sizes: range) -> list[Span]:
    """Every run of ``sizes`` neighbouring words on each line, with its box and line number."""
    return [Span(" ".join(w[4] for w in line[i:i + n]), union(line[i:i + n]), n, k)
            for k, line in enumerate(lines) for n in sizes for i in range(len(line) - n + 1)]


def _date_texts(text: str) -> set[str]:
    """A span and the dates inside it, as OCR glues them: ":31 Jan 2016" (its label's colon),
    "02/02/1610:23:36AM" (a two-digit year with the time run on)."""
    texts = {text, text.strip(":;,.()[]")}
    for m in re.finditer(r"(?<!\d)(\d{1,2}[./-]\d{1,2}[./-]\d{2})\d{1,2}:\d{2}", text):
        texts.add(m.group(1))
    return texts

