"""Normalising extracted values before validation and comparison.

Models copy what is printed: "1.234,56", "€ 12", "23. März 2026", "12-" on a credit note.  The
grammar already forces JSON numbers and ISO dates where the schema asks for them, but string
fields, evaluation against ground truth, and anything a text model wrote as a string need one
canonical form: ISO dates, plain numbers, ISO 4217 codes, trimmed whitespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from typing import Any

from pipeline.consensus.locale import (
    ERA,
    date_literals,
    month_languages,
    month_numbers,
    month_words,
    sign_currencies,
    symbols_longest_first,
)
from pipeline.schema.paths import has_type, resolve_ref, types_of
from pipeline.text import SPACES, clean_text, plain_digits

NULL_WORDS = frozenset({"null", "none", "nil"})
def normalize_currency(value: str | None, allowed: frozenset[str] | None = None) -> str | None:
    """'€', 'eur', 'Euro', '17,510.14 GBP' -> the one ISO code (among ``allowed``) they stand for.

    A sign that several currencies write ("$", "kr", "¥") names none of them: None, so the value
    is a doubt that the page's evidence may settle (``rules.currency``), never a guess."""
    if value is None:
        return None
    text = clean_text(value)
    if not text:
        return None
    whole = sign_currencies(text, allowed)
    if whole or re.fullmatch(r"[^\d]+", text):
        return next(iter(whole)) if len(whole) == 1 else None
    codes = {c for code in re.findall(r"(?<![A-Za-z])[A-Za-z]{3}(?![A-Za-z])", text)
             for c in sign_currencies(code, allowed) if c == code.upper()}
    if not codes:  # a symbol stuck to an amount: "€ 12", "$127.50"
        rest = text.casefold()
        for symbol in symbols_longest_first():
            if not symbol.isalpha() and symbol in rest:
                found = sign_currencies(symbol, allowed)
                codes |= found if len(found) == 1 else {"?"}
                rest = rest.replace(symbol, " ")
    return codes.pop() if len(codes) == 1 and "?" not in codes else None


# an amount printed with its cents: "315.50", "1.234,56", "1 577,50"
_AMOUNT_WITH_CENTS = re.compile(r"(?<![\d.,])\d+(?:[.,'\u00a0\u202f ]\d{3})*[.,]\d{1,2}(?![\d])")
_SPACE_GROUPED = re.compile(r"\d[ '\u2019]\d{3}[.,]\d{3}$")  # "35 686,327": grouped by spaces, then a decimal mark


def normalize_amount(value: Any) -> float | None:
    """Amounts as printed in any common locale -> float.

    '1.234,56' and '1,234.56' and "1'234.56" and '1 234,56' -> 1234.56; '€ 12' -> 12.0;
    '12-' and '(12.00)' and '-12' (credit notes) -> -12.0.  A single separator followed by
    exactly three digits is a thousands separator ('1,234' -> 1234.0), unless what it follows is
    a zero ('0.025' -> 0.025).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = plain_digits(clean_text(str(value)))
    if not text or len(_AMOUNT_WITH_CENTS.findall(text)) > 1:
        return None  # "315.50, 1577.50": two amounts are no one number
    negative = bool(re.search(r"^\(.*\)$|^-|-$|^−|\bCR\b|\bcr\b", text))
    # the number alone: a sign's own dots stay out ("50.970,66 kr.", "13,660.128 د.ك.")
    found = re.search(r"[.,]?\d(?:.*\d)?", text)  # with a decimal mark before it: "$.99"
    printed = found.group() if found else ""
    digits = re.sub(r"[^0-9.,' ]", "", printed).replace(" ", "").replace("'", "")
    if not re.search(r"\d", digits):
        return None
    last_dot, last_comma = digits.rfind("."), digits.rfind(",")
    if last_dot >= 0 and last_comma >= 0:  # both: the later one is the decimal mark
        decimal = "." if last_dot > last_comma else ","
    elif last_dot >= 0 or last_comma >= 0:
        mark = "." if last_dot >= 0 else ","
        head, _, tail = digits.rpartition(mark)
        # no group starts with a zero: '0.025' is a price of a fraction of a cent, not 25; and a number
        # grouped by spaces or apostrophes groups by nothing else ('35 686,327 DT': three-decimal dinars)
        thousands = len(tail) == 3 and head.replace(mark, "").isdigit() and not head.startswith("0") \
            and not _SPACE_GROUPED.search(printed)
        decimal = "" if thousands or digits.count(mark) > 1 else mark
    else:
        decimal = ""
    try:
        if decimal:
            other = "," if decimal == "." else "."
            whole, _, frac = digits.replace(other, "").rpartition(decimal)
            number = float(f"{whole.replace(decimal, '') or 0}.{frac or 0}")
        else:
            number = float(digits.replace(".", "").replace(",", ""))
    except ValueError:
        return None
    return -number if negative else number


_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})")
_NUMERIC = re.compile(r"^(\d{1,4})[./\-](\d{1,2})[./\-](\d{1,4})$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
# a time of day after the date, as receipts print it: "18/02/2018 06:08:59 PM", OCR's "02/02/1610:23:36AM"
_TIME = re.compile(r"(?:\s+|(?<=[./\-]\d{2}))\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?|h)?$")


def normalize_date(value: Any, dayfirst: bool = True) -> str | None:
    """Dates as printed (numeric in any order, or worded in any language) -> 'YYYY-MM-DD'; None if not a date.

    Numeric dates are read day-first ('03/04/2026' = 3 April) unless ``dayfirst`` is False or
    the first number cannot be a day; ISO order (year first) is always recognised.
    """
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    text = plain_digits(clean_text(str(value))).lower()
    text = _TIME.sub("", SPACES.sub(" ", text).strip())
    # CLDR's words beside the numbers out ("2024年2月8日", "10.09.2024 г."), and the spaces some
    # locales print after a separator ("14. 8. 2025", "2025. 05. 10.")
    bare = SPACES.sub(" ", date_literals().sub(" ", text)).strip()
    numeric = _SPACED.sub(r"\1", bare).strip(" .")
    if bare != text and re.fullmatch(r"\d{4}(?: \d{1,2}){2}|\d{1,2} \d{1,2} \d{4}", numeric):
        numeric = numeric.replace(" ", "-")  # "2024年2月8日": the words were the separators
    text = bare
    try:
        if m := _ISO.match(text):
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
        if m := _COMPACT.match(text):
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
        if m := _NUMERIC.match(numeric):
            a, b, c = (int(g) for g in m.groups())
            if a > 31:
                return date(a, b, c).isoformat()
            year = c + 2000 if c < 100 else c
            day, month = (a, b) if dayfirst else (b, a)
            if month > 12:
                day, month = month, day
            return date(year, month, day).isoformat()
        return _worded_date(SPACES.sub(" ", re.sub(r"[,\-]", " ", text)).strip())
    except ValueError:
        return None


# a worded date has a number and a letter and at most a few more words: "29 maart 2014", "1er janvier
# 2026", "2024年2月8日"
_WORDED = re.compile(r"^(?=.*\d)(?=.*[^\W\d_])\S+(?:\s\S+){0,5}$")
_SPACED = re.compile(r"\s*([./\-])\s*")
_ORDER = re.compile(r"(?<!\d)(\d{1,2})[./\-](\d{1,2})[./\-]\d{2}")


@lru_cache(maxsize=4096)
def _worded_date(text: str) -> str | None:
    """A date with its month in words, in any language dateparser (CLDR) knows; day, month and year
    all printed ("Sep 2026" is no date)."""
    if len(text) > 40 or not _WORDED.match(text) or len(re.findall(r"\d+", text)) < 2:
        return None
    # "ส.ค." keeps its dots, "كانون الأول" is one name
    words = {*re.findall(r"[^\s\d,.]+", text.casefold()), *_words(text), " ".join(_words(text))}
    if not any(_has_month(word.rstrip(".")) for word in words):
        return None  # no month's name in any language: not a worded date (and no parser call)
    import dateparser

    found = dateparser.parse(text, settings={"REQUIRE_PARTS": ["day", "month", "year"], "DATE_ORDER": "DMY",
                                             "PREFER_LOCALE_DATE_ORDER": False, "STRICT_PARSING": True})
    if found is None:
        return _cldr_date(text)
    numbers = {int(n) for n in re.findall(r"\d+", text)}
    if found.day not in numbers or not {found.year, found.year % 100} & numbers:
        return _cldr_date(text)  # a reading whose day or year the text does not print is the parser's guess
    return found.date().isoformat()


MONTH_LETTERS = 3  # a month's name a date is read by without the parser: "de", "sa", "id" are other words too


def _cldr_date(text: str) -> str | None:
    """A worded date the date parser has no data for ("30 شتنبر 2024" in Morocco, "3 juill. 2024"
    in Quebec, "07 Ġun 2024" in Malta): a month's name (of one word or two) that CLDR's locales
    give one month, a day, a year of this century or the last, and no other word but an era's name
    ("ค.ศ."); the words CLDR's patterns print beside a date are gone already (``date_literals``)."""
    numbers = re.findall(r"\d+", text)
    words = _words(text)
    if len(numbers) != 2 or not words or "/" in text:  # "No. 12/2024" is a number ("no": November somewhere)
        return None
    months: set[int] = set()
    if phrase := month_numbers().get(" ".join(words)):  # a name of two words: "كانون الأول", December
        words, months = [], set(phrase)
    for word in words:
        # a letter a language joins to the name ("באוג׳": "in Aug."), no more: "Joghurt" holds no month
        named = month_numbers().get(word) or month_numbers().get(word[1:])
        if named is None or (named != {ERA} and len(word) < MONTH_LETTERS):  # no month's name nor an era's
            return None
        months |= named - {ERA}
    year = next((int(n) for n in numbers if len(n) == 4 and n[:2] in ("19", "20")), None)
    day = next((int(n) for n in numbers if len(n) <= 2), None)
    if len(months) != 1 or year is None or day is None:
        return None
    try:
        return date(year, months.pop(), day).isoformat()
    except ValueError:
        return None


def _words(text: str) -> list[str]:
    """A date's words between its numbers and separators, case-folded, without a final "."."""
    return [w.rstrip(".") for w in re.split(r"[\s\d,/\-]+", text.casefold()) if w.strip(".")]


def month_readings(text: str) -> dict[str, frozenset[str]]:
    """The dates a worded date reads as, by language, where its month's name is one month in one
    language and another in another ("15. listopada 2025": October in Croatian, November in Polish):
    ISO date -> the languages that read it.  Empty where the month names one month wherever it is
    written (nearly every date) or the text is no worded date."""
    words = [w.rstrip(".") for w in re.findall(r"[^\W\d_]+\.?", text.casefold())]
    months = next((found for w in words if (found := month_languages().get(w))), None)
    read = normalize_date(text) if months else None
    if months is None or read is None:
        return {}
    year, _, day = (int(part) for part in read.split("-"))
    out: dict[str, frozenset[str]] = {}
    for month, languages in months.items():
        try:
            out[date(year, month, day).isoformat()] = languages
        except ValueError:  # the 31st of a month of 30 days: no reading in that language
            continue
    return out


def _has_month(word: str) -> bool:
    """A month's name, or one behind a letter that a language joins to it (Hebrew "באוגוסט", "in August")."""
    words = month_words()
    return word in words or any(word[i:] in words for i in range(1, len(word) - 2))


def date_order(texts: Iterable[str]) -> bool | None:
    """The order a page or document prints its numeric dates in, by its dates that only one order
    can read ("13.07.2018" is day first, "07/13/2018" month first): True day first, False month
    first, None where none of them says (or as many say each)."""
    votes = [0, 0]
    for text in texts:
        for m in _ORDER.finditer(text):
            first, second = int(m.group(1)), int(m.group(2))
            votes[0] += first > 12 >= second
            votes[1] += second > 12 >= first
    return None if votes[0] == votes[1] else votes[0] > votes[1]


def ambiguous_order(text: str) -> bool:
    """Whether a numeric date reads as two different dates by the order ("03/04/2026")."""
    m = _NUMERIC.match(_TIME.sub("", clean_text(text)))
    if not m or int(m.group(1)) > 31:
        return False
    a, b = int(m.group(1)), int(m.group(2))
    return a != b and a <= 12 and b <= 12


def normalize_record(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None,
                     dayfirst: bool | None = None, nulled: list[str] | None = None, path: str = "") -> Any:
    """Walk a record with its (real) schema: amounts to numbers, dates to ISO, enum members, trimmed text.

    A value that cannot be normalised becomes null where the schema allows null (its field path
    is appended to ``nulled``, so the page records it), and is left as it was otherwise
    (validation then reports it).
    """
    if root is None:
        root = schema
        order = date_order(_date_strings(value, schema, root))
        normalized = normalize_record(value, schema, root, order is not False, nulled, path)
        return _no_zero_adjustments(_infer_currency(value, normalized, schema), schema)
    if dayfirst is None:
        dayfirst = date_order(_date_strings(value, schema, root)) is not False
    schema = resolve_ref(schema, root)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        return {k: normalize_record(v, props.get(k, {}), root, dayfirst, nulled, f"{path}.{k}" if path else k)
                for k, v in value.items()}
    if isinstance(value, list):
        return [normalize_record(v, schema.get("items", {}), root, dayfirst, nulled, f"{path}[{i}]")
                for i, v in enumerate(value)]
    if not isinstance(value, str) or ("const" in schema and value == schema["const"]):
        return value  # a constant is what it is, whitespace included
    result = _normalize_string(value, schema, dayfirst)
    if result is None and clean_text(value).casefold() not in NULL_WORDS | {""} and nulled is not None:
        nulled.append(path)
    return result


def _normalize_string(value: str, schema: dict[str, Any], dayfirst: bool) -> Any:
    types = types_of(schema)
    enum = schema.get("enum")
    nullable = "null" in types or (enum is not None and None in enum)
    fallback = None if nullable else value
    if nullable and clean_text(value).casefold() in NULL_WORDS:
        return None  # a small model writes null as a string ("vat_id": "null"): it means null
    if "number" in types or "integer" in types:
        amount = normalize_amount(value)
        if amount is None:
            return fallback
        if "number" not in types:
            return int(amount) if amount.is_integer() else fallback
        return amount
    if schema.get("format") == "date":
        return normalize_date(value, dayfirst) or fallback
    if enum:
        if value in enum:
            return value
        folded = {str(v).casefold(): v for v in enum if v is not None}
        if clean_text(value).casefold() in folded:
            return folded[clean_text(value).casefold()]
        code = normalize_currency(value)
        return code if code in enum else fallback
    text = clean_text(value)
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and not re.search(pattern, text):
        return fallback  # not the kind of value the field holds (JSON Schema patterns are unanchored)
    return text


def _no_zero_adjustments(record: Any, schema: dict[str, Any]) -> Any:
    """A ``sum`` rule's allowances and charges (its ``plus`` and ``minus`` fields) of 0 are none:
    null, as the rule reads them.  A model writes "no discount" as 0.00 or as null, an e-invoice
    states 0.00; one fact, so one value, or samples that agree would look disputed.  (The field
    names are read here as ``rules.checks.adjusting_fields`` does: consensus comes before rules.)"""
    if not isinstance(record, dict):
        return record
    names = {n for rule in schema.get("x-rules") or [] if isinstance(rule, dict) and rule.get("kind") == "sum"
             for key in ("plus", "minus") for n in rule.get(key) or []}
    return {k: None if k in names and v == 0 and not isinstance(v, bool) else v for k, v in record.items()}


def _infer_currency(raw: Any, normalized: Any, schema: dict[str, Any]) -> Any:
    """Fill a null ``"x-normalize": "currency"`` property from the amounts as printed ("1.234,56 CHF")."""
    if not isinstance(raw, dict) or not isinstance(normalized, dict):
        return normalized
    for name, sub in schema.get("properties", {}).items():
        if sub.get("x-normalize") != "currency" or normalized.get(name) is not None:
            continue
        allowed = sub.get("enum")
        for other, other_schema in schema["properties"].items():
            printed = raw.get(other)
            if isinstance(printed, str) and has_type(other_schema, "number"):
                code = normalize_currency(printed) if re.search(r"[^\d\s.,'()+-]", printed) else None
                if code and (allowed is None or code in allowed):
                    normalized = {**normalized, name: code}
                    break
    return normalized


def _date_strings(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> list[str]:
    schema = resolve_ref(schema, root)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        return [d for k, v in value.items() for d in _date_strings(v, props.get(k, {}), root)]
    if isinstance(value, list):
        return [d for v in value for d in _date_strings(v, schema.get("items", {}), root)]
    return [value] if isinstance(value, str) and schema.get("format") == "date" else []
