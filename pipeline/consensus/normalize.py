"""Normalising extracted values before validation and comparison.

Models copy what is printed: "1.234,56", "€ 12", "23. März 2026", "12-" on a credit note.  The
grammar already forces JSON numbers and ISO dates where the schema asks for them, but string
fields, evaluation against ground truth, and anything a text model wrote as a string need one
canonical form: ISO dates, plain numbers, ISO 4217 codes, trimmed whitespace.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

from pipeline.schema.compiled import resolve_ref

MONTHS = {
    # English
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
    "oct": 10, "nov": 11, "dec": 12,
    # German
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "maerz": 3, "mai": 5, "juni": 6, "juli": 7,
    "oktober": 10, "dezember": 12, "okt": 10, "dez": 12, "mär": 3,
    # French
    "janvier": 1, "février": 2, "fevrier": 2, "mars": 3, "avril": 4, "juin": 6, "juillet": 7,
    "août": 8, "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11, "décembre": 12, "decembre": 12,
    "janv": 1, "févr": 2, "fevr": 2, "avr": 4, "juil": 7, "déc": 12,
}

CURRENCY_SYMBOLS = {
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
    "$": "USD", "us$": "USD", "usd": "USD",
    "£": "GBP", "gbp": "GBP",
    "chf": "CHF", "fr.": "CHF", "sfr": "CHF",
    "¥": "JPY", "jpy": "JPY", "c$": "CAD", "ca$": "CAD", "cad": "CAD", "a$": "AUD", "au$": "AUD", "aud": "AUD",
    "kr": "SEK", "sek": "SEK", "nok": "NOK", "dkk": "DKK", "zł": "PLN", "pln": "PLN", "kč": "CZK", "czk": "CZK",
    "₹": "INR", "inr": "INR", "rm": "MYR", "myr": "MYR", "r$": "BRL", "₩": "KRW", "₺": "TRY",
    "hk$": "HKD", "s$": "SGD", "nz$": "NZD", "₱": "PHP", "฿": "THB", "₪": "ILS", "ft": "HUF", "lei": "RON",
}

NULL_WORDS = frozenset({"null", "none", "nil"})
_SPACES = re.compile(r"[\s\u00a0\u202f]+")


def clean_text(value: str) -> str:
    """Unicode NFC, whitespace runs collapsed, trimmed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip()


def normalize_currency(value: str | None) -> str | None:
    """'€', 'eur', 'Euro' -> 'EUR'; an ISO code passes through upper-cased; unknown -> None."""
    if value is None:
        return None
    text = clean_text(value).lower()
    if not text:
        return None
    if text in CURRENCY_SYMBOLS:
        return CURRENCY_SYMBOLS[text]
    if re.fullmatch(r"[a-z]{3}", text):
        return text.upper()
    for symbol in sorted(CURRENCY_SYMBOLS, key=len, reverse=True):  # "hk$" before "$"
        if not symbol.isalpha() and symbol in text:
            return CURRENCY_SYMBOLS[symbol]
    match = re.search(r"\b([a-z]{3})\b", text)
    if match and match.group(1) in CURRENCY_SYMBOLS:
        return CURRENCY_SYMBOLS[match.group(1)]
    return None


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
    text = clean_text(str(value))
    if not text:
        return None
    negative = bool(re.search(r"^\(.*\)$|^-|-$|^−|\bCR\b|\bcr\b", text))
    digits = re.sub(r"[^0-9.,' ]", "", text).strip().replace(" ", "").replace("'", "")
    if not re.search(r"\d", digits):
        return None
    last_dot, last_comma = digits.rfind("."), digits.rfind(",")
    if last_dot >= 0 and last_comma >= 0:  # both: the later one is the decimal mark
        decimal = "." if last_dot > last_comma else ","
    elif last_dot >= 0 or last_comma >= 0:
        mark = "." if last_dot >= 0 else ","
        head, _, tail = digits.rpartition(mark)
        # no group starts with a zero: '0.025' is a price of a fraction of a cent, not 25
        thousands = len(tail) == 3 and head.replace(mark, "").isdigit() and not head.startswith("0")
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
    """Dates as printed (EN/DE/FR words, numeric in any order) -> 'YYYY-MM-DD'; None if not a date.

    Numeric dates are read day-first ('03/04/2026' = 3 April) unless ``dayfirst`` is False or
    the first number cannot be a day; ISO order (year first) is always recognised.
    """
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    text = clean_text(str(value)).lower().replace(",", " ")
    text = _TIME.sub("", _SPACES.sub(" ", text).strip())
    try:
        if m := _ISO.match(text):
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
        if m := _COMPACT.match(text):
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
        if m := _NUMERIC.match(text):
            a, b, c = (int(g) for g in m.groups())
            if a > 31:
                return date(a, b, c).isoformat()
            year = c + 2000 if c < 100 else c
            day, month = (a, b) if dayfirst else (b, a)
            if month > 12:
                day, month = month, day
            return date(year, month, day).isoformat()
        return _worded_date(text)
    except ValueError:
        return None


def _worded_date(text: str) -> str | None:
    tokens = [t.strip(".") for t in re.split(r"[\s\-/]+", text) if t.strip(".")]
    day = month = year = None
    for token in tokens:
        if token in MONTHS and month is None:
            month = MONTHS[token]
        elif token.rstrip("stndrhe").isdigit() if token[:1].isdigit() else False:
            number = int(re.sub(r"\D", "", token))
            if number > 31 and year is None:
                year = number
            elif day is None:
                day = number
            elif year is None:
                year = number + 2000 if number < 100 else number
    if day and month and year:
        return date(year, month, day).isoformat()
    return None


_DMY = re.compile(r"^\s*(\d{1,2})[./\-](\d{1,2})[./\-](\d{2,4})\s*$")


def infer_dayfirst(dates: list[str]) -> bool:
    """One document prints all its dates in one order: a first number > 12 means day first."""
    for text in dates:
        m = _DMY.match(text)
        if m and int(m.group(1)) > 12:
            return True
        if m and int(m.group(2)) > 12:
            return False
    return True


def normalize_record(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None,
                     dayfirst: bool | None = None, nulled: list[str] | None = None, path: str = "") -> Any:
    """Walk a record with its (real) schema: amounts to numbers, dates to ISO, enum members, trimmed text.

    A value that cannot be normalised becomes null where the schema allows null (its field path
    is appended to ``nulled``, so the page records it), and is left as it was otherwise
    (validation then reports it).
    """
    if root is None:
        root = schema
        normalized = normalize_record(value, schema, root, infer_dayfirst(_date_strings(value, schema, root)),
                                      nulled, path)
        return _no_zero_adjustments(_infer_currency(value, normalized, schema), schema)
    if dayfirst is None:
        dayfirst = infer_dayfirst(_date_strings(value, schema, root))
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
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
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
            types = other_schema.get("type")
            if isinstance(printed, str) and "number" in (types if isinstance(types, list) else [types]):
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
