"""Which countries a page proves: VAT ids (python-stdnum, each country's check digits), IBANs
(schwifty), and addresses that end in a country's name (in English or the country's own
language, from CLDR), in a US state with its ZIP code, or, on a line with a five-digit postcode,
in a state or region only one country has (pycountry's subdivisions: "81200 Johor Bahru, Johor").  A name in
running text may mislead, so a name counts only where an address ends, and never a name that is
also a region's ("Georgia").  The countries decide what the page's shared signs mean: which
dollar a "$" is, which crown a "kr" (``rules.currency``), and in which order the numeric dates
are written (``rules.dates``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from pipeline.consensus.locale import country_currencies, month_first
from pipeline.ground.index import PageIndex
from pipeline.render.textlayer import lines_of

_VAT = re.compile(r"^(?P<cc>[A-Z]{2})(?P<rest>[A-Z]?[0-9][0-9A-Z]{5,14})$")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
_GROUP = 5  # an identifier printed in groups spans at most this many words ("DE89 3704 0044 0532 0130 00": 6)
VAT_PREFIX = {"EL": "GR"}  # Greece's VAT ids start with EL (EU convention), its ISO code is GR
Doubt = tuple[str, str]  # a field path the pages leave in doubt, and why


def countries(pages: Sequence[PageIndex]) -> frozenset[str]:
    """ISO 3166 codes of the countries whose VAT ids or IBANs the pages print, valid by their check digits."""
    found: set[str] = set()
    for page in pages:
        texts = [w[4] for w in page.words]
        for i in range(len(texts)):
            joined = ""
            for word in texts[i:i + _GROUP + 1]:
                joined += re.sub(r"[\s.\-/]", "", word).upper().strip(":;,()")
                country = _vat_country(joined) or _iban_country(joined)
                if country:
                    found.add(country)
                    break
        found |= {c for line in lines_of(page.words) if (c := _address_country(" ".join(w[4] for w in line)))}
    return frozenset(found)


# an address's last part: "..., Bangalore, Karnataka, India - 560067", "United States", "Scranton PA 18503"
_LAST_PART = re.compile(r"(?:^|[,;]\s*|\s[-–]\s*)([^\W\d_][^\d,;]*?)[\s.]*(?:[-–]?\s*\d[\d\s]*)?$")
_US_STATE_ZIP = re.compile(r"(?:^|\s)([A-Z]{2})\s+\d{5}(?:-\d{4})?$")


def _address_country(line: str) -> str | None:
    line = line.strip()
    if m := _US_STATE_ZIP.search(line):
        import pycountry

        if pycountry.subdivisions.get(code=f"US-{m.group(1)}") is not None:
            return "US"
    m = _LAST_PART.search(line)
    if not m:
        return None
    name = m.group(1).strip().casefold()
    country = _country_names().get(name)
    if country is None and _POSTCODE.search(line):  # "81200 JOHOR BAHRU, JOHOR": a state only one country has
        country = _subdivisions().get(name)
    return country


_POSTCODE = re.compile(r"(?<!\d)(?<!\d[.,])\d{5}(?!\d)(?![.,]\d)")  # not inside an amount "12,345.67"


@lru_cache(maxsize=1)
def _region_owners() -> dict[str, frozenset[str]]:
    """Each name of a state, province or region (pycountry's ISO 3166-2, case folded) -> the
    countries that have one of that name."""
    import pycountry

    owners: dict[str, set[str]] = {}
    for sub in pycountry.subdivisions:
        owners.setdefault(sub.name.casefold(), set()).add(sub.country_code)
    return {name: frozenset(codes) for name, codes in owners.items()}


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
    from stdnum.util import get_cc_module

    m = _VAT.match(text)
    if not m:
        return None
    country = VAT_PREFIX.get(m["cc"], m["cc"])
    module = get_cc_module(country.lower(), "vat")
    try:
        return country if module is not None and module.is_valid(text) else None
    except Exception:  # a module that cannot judge this form proves nothing
        return None


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
