"""EN 16931 business terms -> a record of the user's schema, as the schema's ``x-einvoice`` says.

A schema opts in property by property:

* a scalar property names its term: ``"invoice_number": {..., "x-einvoice": "BT-1"}``;
* an object property maps its own properties to terms: ``"seller": {"$ref": "#/$defs/party",
  "x-einvoice": {"name": "BT-27", "vat_id": "BT-31", "address": "BG-5"}}`` (a shared ``$defs``
  entry serves seller and buyer, so the terms sit where it is used);
* an array property names the repeating group and its row's terms: ``"line_items": {...,
  "x-einvoice": {"group": "BG-25", "description": "BT-153", "quantity": "BT-129", ...}}``.

A term the XML does not state (MINIMUM and BASIC WL profiles have no lines) stays null or
empty, never invented.  A line's price (BT-146, BT-148) is the price of one unit: divided by the
price base quantity (BT-149) where the XML states one; a line that sells nothing (quantity,
price and amount all zero: a section heading some ERPs write as a line) is left out.  Credit
notes keep the sign the XML states (EN 16931 credit notes carry positive amounts) unless the
schema's root says ``"x-einvoice-credit-notes": "negative"``.
"""

from __future__ import annotations

from typing import Any

from pipeline.consensus.tolerance import SAME_AMOUNT
from pipeline.einvoice.parse import EInvoice
from pipeline.errors import SchemaError
from pipeline.schema.paths import resolve_ref

PARTY_TERMS = {  # term -> (party group, the factur-x library's key)
    "BT-27": ("BG-4", "name"), "BT-28": ("BG-4", "biz_name"), "BT-30": ("BG-4", "legal_identifier"),
    "BT-31": ("BG-4", "vat_identifier"), "BT-32": ("BG-4", "tax_identifier"),
    "BT-44": ("BG-7", "name"), "BT-45": ("BG-7", "biz_name"), "BT-47": ("BG-7", "legal_identifier"),
    "BT-48": ("BG-7", "vat_identifier"),
}
ADDRESSES = {"BG-5": "BG-4", "BG-8": "BG-7"}  # postal address group -> its party
GROUPS = {"BG-25"}  # repeating groups a schema's array can take its rows from
SIGNED = {"BT-106", "BT-107", "BT-108", "BT-109", "BT-110", "BT-112", "BT-113", "BT-115", "BT-131"}


def einvoice_properties(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema's top-level ``x-einvoice`` annotations (empty: the schema has not opted in)."""
    return {name: sub["x-einvoice"] for name, sub in schema.get("properties", {}).items()
            if isinstance(sub, dict) and "x-einvoice" in sub}


def check_annotations(schema: dict[str, Any]) -> None:
    """Refuse, at start-up, an annotation naming a term extract cannot read."""
    for name, spec in einvoice_properties(schema).items():
        terms = [spec] if isinstance(spec, str) else [v for k, v in spec.items() if k != "group"] \
            if isinstance(spec, dict) else [None]
        group = spec.get("group") if isinstance(spec, dict) else None
        for term in terms:
            known = isinstance(term, str) and (term.startswith("BT-") or term in ADDRESSES)
            if not known:
                raise SchemaError(f"x-einvoice of '{name}': {term!r} is not an EN 16931 term (BT-n, BG-5, BG-8)")
        if group is not None and group not in GROUPS:
            raise SchemaError(f"x-einvoice of '{name}': group {group!r} is not one extract reads ({sorted(GROUPS)})")
    sign = schema.get("x-einvoice-credit-notes", "as-stated")
    if sign not in ("as-stated", "negative"):
        raise SchemaError(f"x-einvoice-credit-notes must be 'as-stated' or 'negative', not {sign!r}")


def to_record(invoice: EInvoice, schema: dict[str, Any]) -> dict[str, Any]:
    """The record the XML states, in the schema's shape (properties without a term are null)."""
    negate = invoice.credit_note and schema.get("x-einvoice-credit-notes") == "negative"
    record: dict[str, Any] = {}
    for name, sub in schema["properties"].items():
        spec = sub.get("x-einvoice") if isinstance(sub, dict) else None
        node = resolve_ref(sub, schema) if isinstance(sub, dict) else {}
        if isinstance(spec, str):
            record[name] = _value(invoice.terms, spec, negate)
        elif isinstance(spec, dict) and spec.get("group"):
            rows = [row for row in invoice.terms.get(spec["group"]) or [] if not _heading(row)]
            record[name] = [{key: _signed(_row_value(row, term), term, negate) for key, term in spec.items()
                             if key != "group"} for row in rows]
        elif isinstance(spec, dict):
            record[name] = {key: _value(invoice.terms, term, negate) for key, term in spec.items()}
            for key in node.get("properties", {}):
                record[name].setdefault(key, None)
        else:
            record[name] = [] if _is_array(node) else None
    return record


def _value(terms: dict[str, Any], term: str, negate: bool) -> Any:
    if term in PARTY_TERMS:
        group, key = PARTY_TERMS[term]
        return (terms.get(group) or {}).get(key)
    if term in ADDRESSES:
        party = terms.get(ADDRESSES[term]) or {}
        place = " ".join(p for p in (party.get("postcode"), party.get("city")) if p)
        parts = [party.get("addr_l1"), party.get("addr_l2"), party.get("addr_l3"), place, party.get("country_code")]
        return ", ".join(p for p in parts if p) or None
    return _signed(terms.get(term), term, negate)


def _heading(row: dict[str, Any]) -> bool:
    """A line that sells nothing (quantity, price and amount all zero or absent): a section heading
    or a note some ERPs write as a line, not an invoice line."""
    return not any(row.get(term) for term in ("BT-129", "BT-131", "BT-146"))


def _row_value(row: dict[str, Any], term: str) -> Any:
    """A line's term; a price (BT-146 net, BT-148 gross) is per one unit: divided by the price base
    quantity (BT-149) where the XML states one (30.00 for 3 pieces is 10.00 a piece), unless the
    line then no longer adds up while it does undivided (an ERP that writes the quantity there)."""
    value = row.get(term)
    base = row.get("BT-149")
    if term not in ("BT-146", "BT-148") or not isinstance(value, (int, float)) or \
            not isinstance(base, (int, float)) or not base or base == 1:
        return value
    quantity, amount = row.get("BT-129"), row.get("BT-131")
    if isinstance(quantity, (int, float)) and isinstance(amount, (int, float)) and \
            abs(quantity * value - amount) <= SAME_AMOUNT < abs(quantity * value / base - amount):
        return value
    return round(value / base, 6)


def _signed(value: Any, term: str, negate: bool) -> Any:
    return -value if negate and term in SIGNED and isinstance(value, (int, float)) and value else value


def _is_array(node: dict[str, Any]) -> bool:
    t = node.get("type")
    return "array" in t if isinstance(t, list) else t == "array"
