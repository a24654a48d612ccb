"""Generated e-invoices, for tests and demos: every format ``pipeline.einvoice`` reads, and hostile files.

The invoices come from ``samples.make_invoice`` (a visible page drawn with fpdf2) and their XML
from the ``factur-x`` library (CII for Factur-X / ZUGFeRD 2.x and XRechnung, UBL 2.1), attached
with that library (Factur-X PDF/A-3) or with PyMuPDF (other attachment names).  ZUGFeRD 1.0,
which the library cannot write, comes from a short template checked against its XSD by the tests.
Each ``NAME.pdf`` / ``NAME.xml`` has ``NAME.json`` beside it: the values its XML states.
"""

from __future__ import annotations

import json
import random
import zlib
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.devtools.samples import make_invoice, render_pdf

XRECHNUNG_CII = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
EN16931 = "urn:cen.eu:en16931:2017"
CREDIT_NOTE = "381"


def terms(inv: dict[str, Any], type_code: str = "380", guideline: str = EN16931) -> dict[str, Any]:
    """The factur-x library's data dict (EN 16931 business terms) for a generated invoice."""
    rate = round(inv["tax_amount"] / inv["net_amount"] * 100, 2) if inv["net_amount"] else 0.0
    money = "{:.2f}".format

    def party(p: dict[str, Any], vat: bool) -> dict[str, Any]:
        out = {"name": p["name"], "country_code": "DE", "addr_l1": p["address"]}
        return {**out, "vat_identifier": p["vat_id"]} if vat else out

    return {
        "BT-1": inv["invoice_number"], "BT-2": date.fromisoformat(inv["issue_date"]), "BT-3": type_code,
        "BT-5": inv["currency"], "BT-9": date.fromisoformat(inv["due_date"]), "BT-24": guideline,
        "BT-72": date.fromisoformat(inv["issue_date"]),
        "BG-4": party(inv["seller"], vat=True), "BG-7": party(inv["buyer"], vat=False),
        "BG-23": [{"BT-116": money(inv["net_amount"]), "BT-117": money(inv["tax_amount"]), "BT-118": "S",
                   "BT-119": money(rate)}],
        "BG-25": [{"BT-126": str(i), "BT-129": money(line["quantity"]), "BT-130": "C62",
                   "BT-131": money(line["amount"]), "BT-146": money(line["unit_price"]), "BT-151": "S",
                   "BT-152": money(rate), "BT-153": line["description"]}
                  for i, line in enumerate(inv["line_items"], start=1)],
        "BT-106": money(inv["net_amount"]), "BT-109": money(inv["net_amount"]), "BT-110": money(inv["tax_amount"]),
        "BT-112": money(inv["total_amount"]), "BT-115": money(inv["total_amount"]),
    }


def truth(inv: dict[str, Any]) -> dict[str, Any]:
    """What the XML states, in ``schemas/invoice.json``'s shape (the buyer's VAT id is not in it)."""
    def party(p: dict[str, Any], vat: bool) -> dict[str, Any]:
        return {"name": p["name"], "vat_id": p["vat_id"] if vat else None, "address": f"{p['address']}, DE"}

    return {**inv, "seller": party(inv["seller"], True), "buyer": party(inv["buyer"], False)}


def cii(data: dict[str, Any], level: str = "en16931") -> bytes:
    """CII as the factur-x library writes it; a guideline it does not know (XRechnung) is set afterwards."""
    from facturx.generate_xml import generate_xml

    guideline = data.get("BT-24")
    xml: bytes = generate_xml({**data, "BT-24": EN16931} if guideline == XRECHNUNG_CII else data, flavor="factur-x",
                              level=level, check_schematron=False)
    if guideline == XRECHNUNG_CII:
        xml = xml.replace(f"<ram:ID>{EN16931}</ram:ID>".encode(), f"<ram:ID>{XRECHNUNG_CII}</ram:ID>".encode(), 1)
    return xml


def ubl(data: dict[str, Any]) -> bytes:
    from facturx.generate_xml import generate_xml

    xml: bytes = generate_xml(data, flavor="ubl-2.1", level="en16931", check_schematron=False)
    return xml


def attach(pdf: bytes, name: str, payload: bytes, compress: bool = True) -> bytes:
    """A PDF with ``payload`` embedded as ``name`` (PyMuPDF; any name, unlike a Factur-X PDF/A-3)."""
    import pymupdf

    doc = pymupdf.open(stream=pdf, filetype="pdf")
    doc.embfile_add(name, payload, filename=name)
    return bytes(doc.tobytes(deflate=compress, garbage=0))


def facturx_pdf(pdf: bytes, xml: bytes) -> bytes:
    """A Factur-X PDF/A-3 with ``factur-x.xml`` attached, as the ``factur-x`` library makes it."""
    from facturx import generate_from_binary

    made: bytes = generate_from_binary(pdf, xml, check_xsd=True)
    return made


ZUGFERD_V1 = """<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryDocument xmlns:rsm="urn:ferd:CrossIndustryDocument:invoice:1p0"
  xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12"
  xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15">
  <rsm:SpecifiedExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>
    <ram:ID>urn:ferd:CrossIndustryDocument:invoice:1p0:comfort</ram:ID>
  </ram:GuidelineSpecifiedDocumentContextParameter></rsm:SpecifiedExchangedDocumentContext>
  <rsm:HeaderExchangedDocument>
    <ram:ID>{number}</ram:ID><ram:Name>RECHNUNG</ram:Name><ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">{issued}</udt:DateTimeString></ram:IssueDateTime>
  </rsm:HeaderExchangedDocument>
  <rsm:SpecifiedSupplyChainTradeTransaction>
    <ram:ApplicableSupplyChainTradeAgreement>
      <ram:SellerTradeParty><ram:Name>{seller}</ram:Name>
        <ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">{seller_vat}</ram:ID></ram:SpecifiedTaxRegistration>
      </ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>{buyer}</ram:Name></ram:BuyerTradeParty>
    </ram:ApplicableSupplyChainTradeAgreement>
    <ram:ApplicableSupplyChainTradeSettlement>
      <ram:InvoiceCurrencyCode>{currency}</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradeSettlementMonetarySummation>
        <ram:LineTotalAmount currencyID="{currency}">{net}</ram:LineTotalAmount>
        <ram:TaxBasisTotalAmount currencyID="{currency}">{net}</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="{currency}">{tax}</ram:TaxTotalAmount>
        <ram:GrandTotalAmount currencyID="{currency}">{total}</ram:GrandTotalAmount>
      </ram:SpecifiedTradeSettlementMonetarySummation>
    </ram:ApplicableSupplyChainTradeSettlement>{lines}
  </rsm:SpecifiedSupplyChainTradeTransaction>
</rsm:CrossIndustryDocument>
"""
ZUGFERD_V1_LINE = """
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:AssociatedDocumentLineDocument><ram:LineID>{n}</ram:LineID></ram:AssociatedDocumentLineDocument>
      <ram:SpecifiedSupplyChainTradeAgreement><ram:NetPriceProductTradePrice>
        <ram:ChargeAmount currencyID="{currency}">{price}</ram:ChargeAmount>
      </ram:NetPriceProductTradePrice></ram:SpecifiedSupplyChainTradeAgreement>
      <ram:SpecifiedSupplyChainTradeDelivery><ram:BilledQuantity unitCode="C62">{qty}</ram:BilledQuantity>
      </ram:SpecifiedSupplyChainTradeDelivery>
      <ram:SpecifiedSupplyChainTradeSettlement><ram:SpecifiedTradeSettlementMonetarySummation>
        <ram:LineTotalAmount currencyID="{currency}">{amount}</ram:LineTotalAmount>
      </ram:SpecifiedTradeSettlementMonetarySummation></ram:SpecifiedSupplyChainTradeSettlement>
      <ram:SpecifiedTradeProduct><ram:Name>{description}</ram:Name></ram:SpecifiedTradeProduct>
    </ram:IncludedSupplyChainTradeLineItem>"""


def zugferd_v1(inv: dict[str, Any]) -> bytes:
    from xml.sax.saxutils import escape

    lines = "".join(ZUGFERD_V1_LINE.format(n=i, currency=inv["currency"], price=f"{line['unit_price']:.2f}",
                                           qty=f"{line['quantity']:.2f}", amount=f"{line['amount']:.2f}",
                                           description=escape(line["description"]))
                    for i, line in enumerate(inv["line_items"], start=1))
    return ZUGFERD_V1.format(number=escape(inv["invoice_number"]), issued=inv["issue_date"].replace("-", ""),
                             seller=escape(inv["seller"]["name"]), seller_vat=inv["seller"]["vat_id"],
                             buyer=escape(inv["buyer"]["name"]), currency=inv["currency"],
                             net=f"{inv['net_amount']:.2f}", tax=f"{inv['tax_amount']:.2f}",
                             total=f"{inv['total_amount']:.2f}", lines=lines).encode()


def generate_einvoices(directory: Path, seed: int = 5) -> dict[str, Path]:
    """One e-invoice of each kind (name -> path), with NAME.json beside each: what its XML states."""
    from faker import Faker

    directory.mkdir(parents=True, exist_ok=True)
    rng, fake = random.Random(seed), Faker("de_DE")
    fake.seed_instance(seed)
    made: dict[str, Path] = {}

    def save(name: str, inv: dict[str, Any], data: bytes, suffix: str, stated: dict[str, Any]) -> None:
        path = directory / f"{name}{suffix}"
        path.write_bytes(data)
        (directory / f"{name}.json").write_text(json.dumps(stated, indent=1, ensure_ascii=False) + "\n")
        made[name] = path

    def invoice(n_items: int) -> dict[str, Any]:
        inv = make_invoice(rng, fake, n_items)
        for p in ("seller", "buyer"):
            inv[p]["address"] = inv[p]["address"].replace(", ", " ")  # one address line
        return {**inv, "currency": "EUR"}

    inv = invoice(3)
    save("facturx-en16931", inv, facturx_pdf(render_pdf(inv, "classic"), cii(terms(inv))), ".pdf", truth(inv))
    inv = invoice(2)
    credit = {**inv, "invoice_number": inv["invoice_number"].replace("INV", "CN")}
    save("facturx-credit-note", credit, facturx_pdf(render_pdf(credit, "modern"), cii(terms(credit, CREDIT_NOTE))),
         ".pdf", truth(credit))
    inv = invoice(2)
    xrechnung = cii(terms(inv, guideline=XRECHNUNG_CII))
    save("xrechnung-cii", inv, xrechnung, ".xml", truth(inv))
    save("xrechnung-attached", inv, attach(render_pdf(inv, "compact"), "xrechnung.xml", xrechnung), ".pdf",
         truth(inv))
    inv = invoice(2)
    save("peppol-ubl", inv, ubl(terms(inv)), ".xml", truth(inv))
    inv = invoice(1)
    v1 = {**truth(inv), "seller": {**truth(inv)["seller"], "address": None}, "buyer": {**truth(inv)["buyer"],
                                                                                      "address": None},
          "due_date": None}
    save("zugferd-v1", inv, attach(render_pdf(inv, "classic"), "ZUGFeRD-invoice.xml", zugferd_v1(inv)), ".pdf", v1)
    return made


def tampered(directory: Path, seed: int = 9) -> Path:
    """A Factur-X PDF whose page shows another seller and total than its XML states (the fraud
    pattern ``--einvoice verify`` exists for); NAME.json holds what the XML states."""
    from faker import Faker

    directory.mkdir(parents=True, exist_ok=True)
    rng, fake = random.Random(seed), Faker("de_DE")
    fake.seed_instance(seed)
    inv = {**make_invoice(rng, fake, 2), "currency": "EUR"}
    shown = {**inv, "seller": {**inv["seller"], "name": "Evil Payments Ltd"},
             "total_amount": round(inv["total_amount"] + 1000, 2)}
    path = directory / "facturx-tampered.pdf"
    path.write_bytes(facturx_pdf(render_pdf(shown, "classic"), cii(terms(inv))))
    path.with_suffix(".json").write_text(json.dumps(truth(inv), indent=1, ensure_ascii=False) + "\n")
    return path


def hostile(directory: Path) -> dict[str, Path]:
    """E-invoices no one should trust: each must become a clear error (or a model-path row), never a crash."""
    directory.mkdir(parents=True, exist_ok=True)
    page = render_pdf(_plain_invoice(), "classic")
    good = cii(terms(_plain_invoice()))
    files: dict[str, bytes] = {
        "xxe.xml": (b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                    b'<rsm:CrossIndustryInvoice '
                    b'xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100">'
                    b"&x;</rsm:CrossIndustryInvoice>"),
        "billion-laughs.xml": (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
                               + b"".join(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10 if i > 1 else
                                                                       b"&lol;" * 10) for i in range(1, 10))
                               + b']>\n<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">'
                               b"&lol9;</Invoice>"),
        "not-well-formed.xml": good[: len(good) // 2],
        "wrong-namespace.xml": good.replace(b"urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
                                            b"urn:example:not-an-invoice"),
        "bad-arithmetic.xml": good.replace(b">119.00<", b">191.00<"),
        "schema-invalid.xml": good.replace(b"ram:ID>INV-HOSTILE", b"ram:Nonsense>INV-HOSTILE", 1).replace(
            b"INV-HOSTILE-1</ram:ID>", b"INV-HOSTILE-1</ram:Nonsense>", 1),
        "attachment-bomb.pdf": _bomb(page),
        "deep.xml": b"<Invoice>" + b"<a>" * 200 + b"</a>" * 200 + b"</Invoice>",
    }
    big = directory / "huge.xml"  # 50 MB: refused by size before it is parsed
    with big.open("wb") as fh:
        fh.write(b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">')
        chunk = b"<cbc:Note>" + b"x" * 1000 + b"</cbc:Note>"
        for _ in range(50 * 1024):
            fh.write(chunk)
        fh.write(b"</Invoice>")
    out = {"huge.xml": big}
    for name, data in files.items():
        (directory / name).write_bytes(data)
        out[name] = directory / name
    return out


def _plain_invoice() -> dict[str, Any]:
    item = {"description": "Widget", "quantity": 1.0, "unit_price": 100.0, "amount": 100.0}
    party = {"name": "Hostile Test GmbH", "vat_id": "DE111111111", "address": "Teststr 1 Berlin"}
    return {"invoice_number": "INV-HOSTILE-1", "issue_date": "2026-01-02", "due_date": "2026-02-01",
            "seller": party, "buyer": {**party, "name": "Target AG"}, "currency": "EUR", "net_amount": 100.0,
            "tax_amount": 19.0, "total_amount": 119.0, "line_items": [item]}


def _bomb(pdf: bytes) -> bytes:
    """A PDF whose factur-x.xml attachment is 64 MB of zeros, deflated to about 64 KB."""
    import pymupdf

    doc = pymupdf.open(stream=pdf, filetype="pdf")
    doc.embfile_add("factur-x.xml", b"<x/>", filename="factur-x.xml")
    stream_xref = next(x for x in range(1, doc.xref_length()) if doc.xref_get_key(x, "Type") ==
                       ("name", "/EmbeddedFile"))
    doc.update_stream(stream_xref, zlib.compress(b"\0" * (64 * 1024 * 1024), 9), compress=False)
    doc.xref_set_key(stream_xref, "Filter", "/FlateDecode")
    return bytes(doc.tobytes(garbage=0))
