"""What the world's locales say about currency signs, a country's money and its date order (Babel's CLDR data).

A hand-written table of signs ("kr" is SEK) is right for one country and silently wrong for the
others: "kr" is the Swedish, Norwegian and Danish krone, "$" some twenty currencies.  CLDR knows
every locale's symbol and name for every currency, which currencies a country uses and how it
writes a short date; a sign that several currencies share stays a set here, and the page's
evidence (``rules.evidence``: VAT ids, IBANs) decides among them, or the value is in doubt.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _locales() -> tuple[Any, ...]:
    """Every CLDR locale, parsed once for the tables below."""
    from babel import Locale, localedata

    return tuple(Locale.parse(ident) for ident in localedata.locale_identifiers())


def _short_date_order(locale: Any) -> tuple[str, str] | None:
    """A locale's short date as (the order of d, M and y, the pattern without quoted text), or None."""
    from babel.dates import get_date_format

    try:
        pattern = re.sub(r"'[^']*'", "", get_date_format("short", locale=locale).pattern)
    except Exception:  # a locale without a short date format says nothing
        return None
    return re.sub(r"(.)\1+", r"\1", "".join(ch for ch in pattern if ch in "dMy")), pattern


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """Every symbol, and every name (singular and plural), any locale writes for a currency
    (case-folded) -> the ISO codes it stands for.

    A locale's own currency's symbol counts ("$" is USD in en_US, CAD in en_CA); a foreign
    currency's symbol as a locale writes it counts too ("US$", "CA$", "HK$"), but not a bare "$"
    that a locale gives a foreign dollar it has no sign of its own for."""
    from babel.numbers import get_territory_currencies

    symbols: dict[str, set[str]] = defaultdict(set)
    names: dict[str, set[str]] = defaultdict(set)
    for locale in _locales():
        own = set(get_territory_currencies(locale.territory, tender=True)) if locale.territory else set()
        for code, symbol in locale.currency_symbols.items():
            if symbol != code and (code in own or not _bare(symbol)):
                symbols[symbol.casefold()].add(code)
        plural = locale._data["currency_names_plural"]
        for code, name in locale.currencies.items():
            forms = [name, *(plural[code].values() if code in plural else ())]
            for form in forms:
                if len(form) > 3:
                    names[form.casefold()].add(code)
    return ({s: frozenset(c) for s, c in symbols.items()}, {n: frozenset(c) for n, c in names.items()})


def _bare(symbol: str) -> bool:
    """A sign without a letter of its own ("$", "¥"): many currencies write it."""
    return not any(ch.isalpha() for ch in symbol)


def sign_currencies(sign: str, allowed: frozenset[str] | None = None) -> frozenset[str]:
    """The ISO codes ``sign`` (a symbol, a name or a code, any case) may stand for, among ``allowed``."""
    text = " ".join(sign.split()).casefold()
    symbols, names = _tables()
    codes = symbols.get(text) or names.get(text) or frozenset()
    if re.fullmatch(r"[a-z]{3}", text) and _is_code(text.upper()):
        codes = frozenset({text.upper()})
    return codes & allowed if allowed is not None else codes


@lru_cache(maxsize=1)
def currency_codes() -> frozenset[str]:
    """Every ISO 4217 code CLDR knows, current or not."""
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def _is_code(code: str) -> bool:
    return code in currency_codes()


@lru_cache(maxsize=1)
def symbols_longest_first() -> list[str]:
    """Every currency symbol (case-folded), longest first, so that "hk$" takes its characters before "$" does."""
    return sorted(_tables()[0], key=len, reverse=True)


def country_currencies(country: str) -> frozenset[str]:
    """The currencies a country (ISO 3166 alpha-2) uses as tender today."""
    from babel.numbers import get_territory_currencies

    try:
        return frozenset(get_territory_currencies(country.upper(), tender=True))
    except Exception:  # an unknown territory has no currency
        return frozenset()


@lru_cache(maxsize=256)
def month_first(country: str) -> bool | None:
    """Whether the country's people write a numeric date month first (True: the US), day first
    (False), or the country's main language's short date is neither (None: year first)."""
    from babel import Locale
    from babel.languages import get_official_languages

    for language in get_official_languages(country.upper(), de_facto=True):
        try:
            short = _short_date_order(Locale(language, country.upper()))
        except Exception:  # no locale for this language in this country: try the next
            continue
        if short is None:
            continue
        first = short[0][:1] or "y"
        return True if first == "M" else False if first == "d" else None
    return None


@lru_cache(maxsize=1)
def _orders_by_separator() -> dict[str, frozenset[str]]:
    """Separator -> the orders of day (d), month (M) and year (y) CLDR's locales write short dates in with it."""
    found: dict[str, set[str]] = defaultdict(set)
    for locale in _locales():
        if (short := _short_date_order(locale)) is None:
            continue
        order, pattern = short
        for separator in set(re.findall(r"[./-]", pattern)):
            found[separator].add(order)
    return {sep: frozenset(orders) for sep, orders in found.items()}


def month_first_written_with(separator: str) -> bool:
    """Whether any locale writes a numeric date month first with this separator: with "/" the US
    does; with "." or "-" none does (CLDR), so "03.04.2026" is 3 April wherever it is printed."""
    return "Mdy" in _orders_by_separator().get(separator, frozenset({"Mdy"}))


def country_languages(country: str) -> frozenset[str]:
    """The languages (ISO 639, without script or region) a country has as official, de facto too."""
    from babel.languages import get_official_languages

    return frozenset(lang.split("_")[0] for lang in get_official_languages(country.upper(), de_facto=True))


SURE_LANGUAGE = 0.9  # the identifier's probability, among the languages asked about, that decides


@lru_cache(maxsize=1)
def _identifier() -> Any:
    """py3langid's identifier (140 languages, probabilities normalised), loaded once: about 0.6 s."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def written_in(text: str, readings: dict[str, frozenset[str]]) -> str | None:
    """Of ``readings`` (each a reading of a text and the languages that read it so), the one whose
    languages ``text`` is written in, where the identifier, asked only about those languages, gives
    it ``SURE_LANGUAGE`` of its probability; None where it does not, or knows no language of one of
    them.  Which of two languages that read alike a page is in does not matter ("Jan" is January in
    English and in Luxembourgish; June in Sesotho)."""
    identifier = _identifier()
    known = {read: languages & set(identifier.labels) for read, languages in readings.items()}
    if len(known) < 2 or not all(known.values()):
        return None
    identifier.set_languages(sorted(frozenset().union(*known.values())))
    try:
        ranked = dict(identifier.rank(text))
    finally:
        identifier.set_languages(None)
    mass = {read: sum(ranked.get(lang, 0.0) for lang in languages) for read, languages in known.items()}
    best = max(mass, key=lambda read: mass[read])
    return best if mass[best] >= SURE_LANGUAGE else None


@lru_cache(maxsize=1)
def month_languages() -> dict[str, dict[int, frozenset[str]]]:
    """Each month's name and abbreviation that reads as different months in different languages ->
    month number -> those languages.  Only the languages some country has as official count:
    Croatian "listopad" is October, Czech and Polish November."""
    from babel.core import get_global

    spoken = {lang for territory in get_global("territory_languages") for lang in country_languages(territory)}
    out = {}
    for word, months in _month_names().items():
        among = {n: langs & spoken for n, langs in months.items() if langs & spoken}
        if len(among) > 1 and not re.search(r"\d", word):
            out[word] = among
    return out


@lru_cache(maxsize=1)
def _month_names() -> dict[str, dict[int, frozenset[str]]]:
    """Every month's name and abbreviation in every CLDR locale (case-folded, without a final ".")
    -> the months it names -> the languages that name them so: one walk for the tables below."""
    found: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for locale in _locales():
        for context in locale.months.values():
            for width in ("wide", "abbreviated"):
                for number, name in context.get(width, {}).items():
                    if word := str(name).casefold().rstrip("."):
                        found[word][number].add(locale.language)
    return {word: {n: frozenset(langs) for n, langs in months.items()} for word, months in found.items()}


@lru_cache(maxsize=1)
def month_words() -> frozenset[str]:
    """Every month's name and abbreviation in every CLDR locale, and the letters of those that hold
    a number ("tháng" of "tháng 5", "月" of "2月", "월" of "11월"): a printed text is a worded date
    only if it holds one, so the date parser runs on few texts."""
    words: set[str] = set()
    for word in _month_names():
        words.add(word)
        if re.search(r"\d", word):
            words.update(part for part in re.split(r"[\s\d#]+", word) if part)
    return frozenset(words)


@lru_cache(maxsize=1)
def month_numbers() -> dict[str, frozenset[int]]:
    """Every month's name and abbreviation in every CLDR locale (case-folded, without a final ".")
    -> the months it names; and every era's name (``ERA``: "ค.ศ.", "AD", "n. Chr."), which a long
    date may print beside its year."""
    found: dict[str, set[int]] = defaultdict(set)
    for word, months in _month_names().items():
        found[word].update(months)
    for locale in _locales():
        for names in locale.eras.values():
            for name in names.values():
                found[str(name).casefold().rstrip(".")].add(ERA)
    return {word: frozenset(months) for word, months in found.items() if word and not re.search(r"\d", word)}


ERA = 0  # month_numbers' mark of an era's name


@lru_cache(maxsize=1)
def date_literals() -> re.Pattern[str]:
    """The words CLDR's date patterns print beside a date's numbers and names (Japanese 年 and 日,
    Korean 년 and 일, Bulgarian and Russian "г.", Lithuanian "m." and "d.", Latvian "gada", Spanish
    "de"), each as a word of its own: without them a printed date is its numbers and its month."""
    found: set[str] = set()
    for locale in _locales():
        for width in ("short", "medium", "long", "full"):
            try:
                pattern = locale.date_formats[width].pattern
            except (KeyError, AttributeError):
                continue
            found.update(t.strip().casefold() for t in re.findall(r"'([^']+)'", pattern))
            found.update(re.findall(r"[^\W\da-zA-Z_]+", re.sub(r"'[^']*'", "", pattern).casefold()))
    words = sorted((w for w in found if w and not re.search(r"[\d\s]", w)), key=len, reverse=True)
    return re.compile(r"(?<![^\W\d_])(?:" + "|".join(map(re.escape, words)) + r")\.?(?![^\W\d_])")
