"""Day or month first: a numeric date such as "03/04/2026" is two dates, and only evidence says which.

The evidence, strongest first: the page's own dates that only one order can read ("13/04/2026"
is day first; ``consensus.normalize.date_order`` over every page read), then the countries the
page's VAT ids and IBANs prove and how CLDR says their people write a short date
(``rules.evidence``), then the separator: no locale in CLDR writes a month-first date with "." or
"-", so "03.04.2026" is 3 April anywhere; only "/" is both.  A worded date is two dates where its
month's name is two months in two languages ("15. listopada 2025": October in Croatian, November in
Polish); the languages of the countries the page proves decide, else the language the page's
words are written in.  Where the evidence settles it and the record holds the other reading, the
record takes the evidence's (recorded); where nothing settles it, the date is in doubt with the
reason, and is not silently read day first.  A date the
page also prints in words, or whose two readings are one date ("05/05/2026"), is not in doubt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipeline.consensus.locale import country_languages, month_first_written_with, written_in
from pipeline.consensus.normalize import ambiguous_order, date_order, month_readings, normalize_date
from pipeline.ground.index import PageIndex
from pipeline.rules.evidence import Doubt, dates_month_first


def repair_date_order(record: dict[str, Any], schema: dict[str, Any], pages: Sequence[PageIndex],
                      proven: frozenset[str]) -> tuple[dict[str, Any], list[str], list[Doubt]]:
    """``record`` with its top-level dates read in the order the evidence proves; the notes of
    what changed, and the dates left in doubt with why."""
    names = [k for k, v in (schema.get("properties") or {}).items()
             if isinstance(v, dict) and v.get("format") == "date"]
    if not names or not any(p.words for p in pages):
        return record, [], []
    order = date_order(span.text for p in pages for _, span in p.dates)
    why = "the page's own dates that only one order reads"
    if order is None and (first := dates_month_first(proven)) is not None:
        order, why = not first, f"how {', '.join(sorted(proven))} write dates (from its VAT id or IBAN)"
    notes: list[str] = []
    doubts: list[Doubt] = []
    for name in names:
        value = record.get(name)
        if not isinstance(value, str):
            continue
        printed = _printed_as(value, pages)
        readings = [month_readings(text) for text in printed]
        if printed and all(len(read) > 1 for read in readings):
            record, note, doubt = _month_language(record, name, value, printed[0], readings[0], proven, pages)
            notes += note
            doubts += doubt
            continue
        if not printed or any(not ambiguous_order(text) for text in printed):
            continue  # printed nowhere (grounding's business), or also in a form only one order reads
        text = printed[0]
        if order is None and not month_first_written_with(_separator(text)):
            order, why = True, "no locale writes a date month first with its separator (CLDR)"
        if order is None:
            doubts.append((name, f"printed as {text!r}, which reads day first or month first; "
                                 "nothing on the page says which"))
            continue
        wanted = normalize_date(text, order)
        if wanted and wanted != value:
            record = {**record, name: wanted}
            notes.append(f"{name}: {value} -> {wanted} ({text!r} read {'day' if order else 'month'} first, by {why})")
    return record, notes, doubts


def _month_language(record: dict[str, Any], name: str, value: str, text: str, readings: dict[str, frozenset[str]],
                    proven: frozenset[str],
                    pages: Sequence[PageIndex]) -> tuple[dict[str, Any], list[str], list[Doubt]]:
    """The date ``text`` (``readings``: its ``month_readings``) reads as in the languages of the
    countries the page proves, where only one of its readings is theirs, else in the language its
    words are written in (py3langid, asked only about the readings' languages); else the date in
    doubt, with its readings."""
    spoken = frozenset(lang for country in proven for lang in country_languages(country))
    why = f"spoken in {', '.join(sorted(proven))}"
    theirs = [read for read, languages in readings.items() if languages & spoken]
    if len(theirs) != 1:  # no country proven, or one that speaks both: the page's own words
        written = written_in(" ".join(w[4] for p in pages for w in p.words), readings)
        theirs, why = [written] if written else [], "the language the page's words are written in"
        spoken = readings[written] if written else frozenset()
    if len(theirs) != 1:
        said = "; ".join(f"{read} in {', '.join(sorted(languages))}" for read, languages in sorted(readings.items()))
        return record, [], [(name, f"printed as {text!r}, whose month is another in another language ({said}); "
                                   "neither the countries on the page nor its words say which")]
    if theirs[0] == value:
        return record, [], []
    languages = ", ".join(sorted(readings[theirs[0]] & spoken))
    return {**record, name: theirs[0]}, [f"{name}: {value} -> {theirs[0]} ({text!r} read in {languages}, {why})"], []


def _separator(text: str) -> str:
    found = re.search(r"\d([./-])\d", text)
    return found.group(1) if found else "/"


def _printed_as(value: str, pages: Sequence[PageIndex]) -> list[str]:
    """The texts on the pages that read as ``value`` in either order."""
    return [span.text.strip(":;,.()[]") for p in pages for found, span in p.dates if value in found]
