"""Which countries a page's own identifiers prove: VAT ids (python-stdnum, each country's check
digits) and IBANs (schwifty).  A name or an address may mislead ("Georgia", a buyer abroad); an
identifier that validates does not, so only identifiers count.  The countries decide what the
page's shared signs mean: which dollar a "$" is, which crown a "kr" (``rules.currency``), and in
which order the numeric dates are written (``rules.dates``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.consensus.locale import country_currencies, month_first
from pipeline.ground.index import PageIndex

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
    return frozenset(found)


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
