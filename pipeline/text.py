"""How text is compared: one folding per purpose, so that two stages never read one word differently.

- ``clean_text``: what a value is (NFC, runs of spaces of any kind as one, trimmed).
- ``fold``: two values compared (case folded, trailing punctuation dropped): voting, scoring,
  grounding a value on its page.
- ``fold_words``: a page's words matched against words we know (a document's title, a label
  like "Rechnungsempfänger", an instruction aimed at a model): accents and typographic quotes
  dropped too, since OCR, fonts and writers drop or add them ("Bestatigung", "l’IA").
- ``tokens`` and ``alnum``: letters and digits only, for matching a value across the spaces
  and punctuation a layout adds or drops.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

SPACES = re.compile(r"[\s\u00a0\u202f]+")  # whitespace, no-break and thin spaces
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"'})


def clean_text(value: str) -> str:
    """NFC, every run of whitespace (no-break and thin spaces too) one space, trimmed."""
    return SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip()


def plain_digits(text: str) -> str:
    """Every script's digits as ASCII digits ("٦/١١/٢٠٢٤" -> "6/11/2024") and the invisible marks that
    order right-to-left text dropped (U+200F between a date's numbers): numbers as Python reads them."""
    if text.isascii():  # nearly every span a page is indexed by: nothing to change
        return text
    return "".join(str(unicodedata.digit(ch)) if ch.isdigit() and not ch.isascii() and unicodedata.decimal(ch, None)
                   is not None else ch for ch in text.translate(_NUMBER_MARKS) if unicodedata.category(ch) != "Cf")


_NUMBER_MARKS = str.maketrans({"\u066b": ".", "\u066c": ","})  # the Arabic decimal and thousands separators


def fold(value: Any) -> str:
    """Text as compared: NFC, whitespace collapsed, case folded, trailing punctuation dropped."""
    return re.sub(r"[\s.,;:]+$", "", clean_text(str(value)).casefold())


def fold_words(text: str) -> str:
    """Lower case without accents or typographic quotes, whitespace collapsed: "Auftragsbestätigung",
    "Bestatigung" and "BESTÄTIGUNG" compare equal, as do "l’IA" and "l'IA".  Latin letters that
    Unicode does not decompose are written as their plain letters too (anyascii): "płatności" is
    "platnosci" as "Zahlbar" is "zahlbar", and "ø", "đ", "æ" compare as "o", "d", "ae"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_QUOTES).casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join((bare if bare.isascii() else "".join(_plain_latin(ch) for ch in bare)).split())


@lru_cache(maxsize=4096)
def _plain_latin(ch: str) -> str:
    """A Latin letter without a decomposition ("ł", "ø", "æ") as ASCII; any other character as it is."""
    if ch.isascii() or not unicodedata.name(ch, "").startswith("LATIN"):
        return ch
    from anyascii import anyascii

    return anyascii(ch).lower() or ch


def tokens(text: str) -> list[str]:
    """The runs of letters and digits of ``text``, case folded."""
    return [t for t in re.split(r"[^\w]+", text.casefold()) if t]


def alnum(text: str) -> str:
    """Letters and digits only, case folded: "DE 123 456-789" -> "de123456789"."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def label_runs(words: Sequence[str], labels: Sequence[str]) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of the printed ``words`` that is one of ``labels``, compared as
    ``fold_words`` without the colon or dot around a label ("Käufer:"), left to right."""
    plain = [fold_words(word).strip(":.") for word in words]
    wanted = [fold_words(label).split() for label in labels]
    for i in range(len(plain)):
        for label in wanted:
            if plain[i:i + len(label)] == label:
                yield i, i + len(label)
