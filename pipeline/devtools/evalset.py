"""A varied evaluation set of invoices with ground truth (deterministic by seed).

English, German and French invoices; EUR, USD, GBP and CHF with each locale's number and
date formats and currency symbols; three layouts; multi-page invoices with 30+ line items;
scanned-look pages (image-only PDFs); a credit note (negative amounts) and one with no tax.
Ground truth sits beside each PDF as ``NAME.json`` in the shape of ``schemas/invoice.json``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipeline.devtools.samples import rasterise

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DEJAVU_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


@dataclass(frozen=True)
class Locale:
    code: str
    faker: str
    labels: dict[str, str]
    decimal: str
    thousands: str
    date_style: str
    months: tuple[str, ...]
    country: str = ""
    rate: float = 0.2
    prefix: str = "INV"
    vat: str | None = "{country}#########"  # a VAT id's form: "#" a random digit; None: the country has none
    products: tuple[str, ...] = ()
    cldr: str | None = None  # a CLDR locale: amounts and dates as Babel writes them (date_style: its width)


EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
             "October", "November", "December")
DE_MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
             "Oktober", "November", "Dezember")
FR_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
             "octobre", "novembre", "décembre")

LOCALES = {
    "en": Locale("en", "en_GB", {
        "invoice": "INVOICE", "credit": "CREDIT NOTE", "number": "Invoice No.", "date": "Invoice date",
        "due": "Due date", "from": "From", "to": "Bill to", "vat": "VAT No.", "desc": "Description",
        "qty": "Qty", "price": "Unit price", "amount": "Amount", "net": "Subtotal", "tax": "VAT",
        "total": "Total due", "notax": "No VAT charged", "page": "Page",
        "rows": "Items total", "allowance": "Discount", "charge": "Shipping"}, ".", ",", "long", EN_MONTHS,
        "GB", 0.2, "INV"),
    "de": Locale("de", "de_DE", {
        "invoice": "RECHNUNG", "credit": "GUTSCHRIFT", "number": "Rechnungsnr.", "date": "Rechnungsdatum",
        "due": "Fällig am", "from": "Absender", "to": "Rechnungsempfänger", "vat": "USt-IdNr.",
        "desc": "Bezeichnung", "qty": "Menge", "price": "Einzelpreis", "amount": "Betrag", "net": "Nettobetrag",
        "tax": "MwSt.", "total": "Gesamtbetrag", "notax": "Steuerfrei", "page": "Seite",
        "rows": "Positionssumme", "allowance": "Rabatt", "charge": "Versandkosten"},
        ",", ".", "dotted", DE_MONTHS, "DE", 0.19, "RE"),
    "fr": Locale("fr", "fr_FR", {
        "invoice": "FACTURE", "credit": "AVOIR", "number": "Facture n°", "date": "Date de facture",
        "due": "Échéance", "from": "Émetteur", "to": "Client", "vat": "N° TVA", "desc": "Désignation",
        "qty": "Qté", "price": "Prix unitaire", "amount": "Montant", "net": "Total HT", "tax": "TVA",
        "total": "Total TTC", "notax": "TVA non applicable", "page": "Page",
        "rows": "Total lignes", "allowance": "Remise", "charge": "Frais de port"}, ",", "\u202f", "words", FR_MONTHS,
        "FR", 0.2, "FA"),
}
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF"}
PRODUCTS = {
    "en": ("Consulting services", "Software licence", "Cloud hosting", "Support contract", "Laptop stand",
           "Office chair", "Docking station", "Printer toner", "Network switch", "Training day"),
    "de": ("Beratungsleistung", "Softwarelizenz", "Cloud-Hosting", "Wartungsvertrag", "Bürostuhl",
           "Dockingstation", "Druckerpatrone", "Netzwerk-Switch", "Schulungstag", "Monitorhalterung"),
    "fr": ("Prestation de conseil", "Licence logicielle", "Hébergement cloud", "Contrat de support",
           "Chaise de bureau", "Station d'accueil", "Cartouche d'encre", "Commutateur réseau",
           "Journée de formation", "Support d'écran"),
}


def fmt_amount(x: float, loc: Locale, currency: str) -> str:
    if loc.cldr:
        from babel.numbers import format_currency

        return str(format_currency(x, currency, locale=loc.cldr))
    whole, frac = f"{abs(x):,.2f}".split(".")
    text = whole.replace(",", loc.thousands) + loc.decimal + frac
    sign = "-" if x < 0 else ""
    symbol = SYMBOLS[currency]
    if loc.code == "en":
        return f"{sign}{symbol}{text}" if symbol != "CHF" else f"{sign}CHF {text}"
    return f"{sign}{text} {symbol}"


def fmt_date(iso: str, loc: Locale) -> str:
    d = date.fromisoformat(iso)
    if loc.cldr:
        from babel.dates import format_date

        return str(format_date(d, loc.date_style, locale=loc.cldr))
    if loc.date_style == "dotted":
        return f"{d.day:02d}.{d.month:02d}.{d.year}"
    if loc.date_style == "words":
        return f"{d.day} {loc.months[d.month - 1]} {d.year}"
    return f"{d.day} {loc.months[d.month - 1]} {d.year}"


def make_truth(rng: random.Random, fake: Any, loc: Locale, n_items: int, currency: str,
               credit: bool = False, no_tax: bool = False, adjusted: bool = False) -> dict[str, Any]:
    """``adjusted``: a discount and a shipping charge on the whole document, below the rows (the
    net is then not the rows' sum)."""
    issue = date(2025, 1, 1) + timedelta(days=rng.randrange(0, 600))
    due = issue + timedelta(days=rng.choice((14, 30, 60)))
    sign = -1.0 if credit else 1.0
    cents = _digits(currency, loc)
    items: list[dict[str, Any]] = []
    for _ in range(n_items):
        qty = float(rng.randint(1, 12))
        price = round(rng.uniform(4, 900), cents)
        items.append({"description": rng.choice(loc.products or PRODUCTS[loc.code]), "quantity": qty,
                      "unit_price": round(sign * price, cents), "amount": round(sign * qty * price, cents)})
    rows = round(sum(i["amount"] for i in items), cents)
    allowance = round(abs(rows) * rng.choice((0.02, 0.03, 0.05)), cents) if adjusted else None
    charge = rng.choice((4.9, 9.5, 12.0, 19.9)) if adjusted else None
    net = round(rows - sign * (allowance or 0.0) + sign * (charge or 0.0), cents)
    tax = round(net * (0.0 if no_tax else loc.rate), cents)
    prefix = loc.prefix if not credit else "CN"

    def party() -> dict[str, Any]:
        return {"name": fake.company(), "vat_id": _vat_id(rng, loc), "address": fake.address().replace("\n", ", ")}

    return {
        "invoice_number": f"{prefix}-{issue.year}-{rng.randint(100, 99999):05d}",
        "issue_date": issue.isoformat(), "due_date": due.isoformat(),
        "seller": party(), "buyer": party(), "currency": currency,
        "allowance_total": allowance, "charge_total": charge,
        "net_amount": net, "tax_amount": tax, "total_amount": round(net + tax, cents), "line_items": items,
    }


def _vat_id(rng: random.Random, loc: Locale) -> str | None:
    """A VAT id of the locale's form; for a CLDR locale one whose check digits are right (python-stdnum),
    as a real invoice's are: a page's country is proved by valid ids only."""
    if not loc.vat:
        return None
    if not loc.cldr:  # the English, German and French set as it always was
        return f"{loc.country}{rng.randint(100000000, 999999999)}"
    from stdnum.util import get_cc_module

    module = get_cc_module(loc.country.lower(), "vat")
    if module is None:
        raise ValueError(f"python-stdnum has no VAT id of {loc.country}")
    while True:
        vat = "".join(str(rng.randint(0, 9)) if ch == "#" else ch for ch in loc.vat.format(country=loc.country))
        if module.is_valid(vat):
            return vat


def _digits(currency: str, loc: Locale) -> int:
    """The currency's decimals as the locale writes them (CLDR: no cents for the forint), else 2."""
    if not loc.cldr:
        return 2
    from babel.numbers import get_currency_precision

    return int(get_currency_precision(currency))


class _Doc:
    """fpdf2 with a Unicode font when the system has DejaVu (for €), else core fonts."""

    def __init__(self) -> None:
        from fpdf import FPDF

        self.pdf = FPDF(format="A4")
        self.pdf.set_auto_page_break(auto=True, margin=18)
        self.pdf.set_margins(12, 12, 12)
        self.unicode = DEJAVU.is_file() and DEJAVU_BOLD.is_file()
        if self.unicode:
            self.pdf.add_font("Body", "", str(DEJAVU))
            self.pdf.add_font("Body", "B", str(DEJAVU_BOLD))
        self.family = "Body" if self.unicode else "Helvetica"

    def font(self, style: str = "", size: float = 9) -> None:
        self.pdf.set_font(self.family, style, size)

    def text(self, value: str) -> str:
        if self.unicode:
            return value
        return value.replace("€", "EUR").replace("\u202f", " ").encode("latin-1", "replace").decode("latin-1")


def render_invoice(inv: dict[str, Any], loc: Locale, layout: int, credit: bool, no_tax: bool) -> bytes:
    doc = _Doc()
    pdf, t, cur = doc.pdf, doc.text, inv["currency"]
    lab = loc.labels
    pdf.add_page()
    title = lab["credit"] if credit else lab["invoice"]
    header = [(lab["number"], inv["invoice_number"]), (lab["date"], fmt_date(inv["issue_date"], loc)),
              (lab["due"], fmt_date(inv["due_date"], loc))]

    def party(title: str, p: dict[str, Any], x: float, y: float) -> None:
        pdf.set_xy(x, y)
        doc.font("B", 9)
        pdf.cell(88, 5, t(title), new_x="LEFT", new_y="NEXT")
        doc.font("", 9)
        vat = f"\n{lab['vat']} {p['vat_id']}" if p["vat_id"] else ""
        pdf.multi_cell(88, 4.5, t(f"{p['name']}\n{p['address']}{vat}"), new_x="LEFT", new_y="NEXT")

    if layout == 0:
        party(lab["from"], inv["seller"], 12, 12)
        doc.font("B", 18)
        pdf.set_xy(110, 12)
        pdf.cell(88, 9, t(title), align="R", new_x="LEFT", new_y="NEXT")
        doc.font("", 9)
        for k, v in header:
            pdf.set_x(110)
            pdf.cell(88, 5, t(f"{k}: {v}"), align="R", new_x="LEFT", new_y="NEXT")
        party(lab["to"], inv["buyer"], 12, 52)
        pdf.set_xy(12, 85)
    elif layout == 1:
        doc.font("B", 15)
        pdf.cell(0, 8, t(f"{inv['seller']['name']} - {title}"), new_x="LMARGIN", new_y="NEXT")
        party(lab["from"], inv["seller"], 12, 24)
        party(lab["to"], inv["buyer"], 110, 24)
        pdf.set_xy(12, 52)
        doc.font("", 9)
        pdf.cell(0, 5, t("   |   ".join(f"{k}: {v}" for k, v in header)), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
    else:
        doc.font("B", 12)
        pdf.cell(0, 7, t(f"{title} {inv['invoice_number']}"), new_x="LMARGIN", new_y="NEXT")
        doc.font("", 9)
        for who, p in ((lab["from"], inv["seller"]), (lab["to"], inv["buyer"])):
            vat = f" ({lab['vat']} {p['vat_id']})" if p["vat_id"] else ""
            pdf.multi_cell(0, 4.5, t(f"{who}: {p['name']}, {p['address']}{vat}"), new_x="LMARGIN", new_y="NEXT")
        pdf.cell(0, 5, t(f"{header[1][0]}: {header[1][1]} - {header[2][0]}: {header[2][1]}"),
                 new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    doc.font("", 8.5)
    with pdf.table(col_widths=(86, 18, 38, 42), text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
                   repeat_headings=1, line_height=5.5) as table:
        table.row((t(lab["desc"]), t(lab["qty"]), t(lab["price"]), t(lab["amount"])))
        for it in inv["line_items"]:
            table.row((t(it["description"]), f"{it['quantity']:g}", t(fmt_amount(it["unit_price"], loc, cur)),
                       t(fmt_amount(it["amount"], loc, cur))))
    pdf.ln(3)
    doc.font("", 9)
    tax_label = lab["notax"] if no_tax else lab["tax"]
    lines: list[tuple[str, float]] = []
    if inv.get("allowance_total") or inv.get("charge_total"):
        lines.append((lab["rows"], round(sum(it["amount"] for it in inv["line_items"]), 2)))
        lines += [(lab["allowance"], -inv["allowance_total"])] if inv.get("allowance_total") else []
        lines += [(lab["charge"], inv["charge_total"])] if inv.get("charge_total") else []
    lines += [(lab["net"], inv["net_amount"]), (tax_label, inv["tax_amount"]), (lab["total"], inv["total_amount"])]
    for label, value in lines:
        doc.font("B" if label == lab["total"] else "", 9)
        pdf.cell(140, 5.5, t(label), align="R")
        pdf.cell(46, 5.5, t(fmt_amount(value, loc, cur)), align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def generate_evalset(directory: Path, seed: int = 2026, per_locale: int = 15) -> list[Path]:
    """Write the eval set: ``per_locale`` single-page invoices per language plus special cases."""
    from faker import Faker

    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    written: list[Path] = []
    currencies = {"en": ("GBP", "USD", "EUR"), "de": ("EUR", "CHF"), "fr": ("EUR", "CHF")}

    def save(name: str, inv: dict[str, Any], pdf: bytes) -> None:
        path = directory / f"{name}.pdf"
        path.write_bytes(pdf)
        (directory / f"{name}.json").write_text(json.dumps(inv, indent=2, ensure_ascii=False) + "\n", "utf-8")
        written.append(path)

    for code, loc in LOCALES.items():
        fake = Faker(loc.faker)
        fake.seed_instance(seed + len(code) + ord(code[0]))
        for i in range(per_locale):
            inv = make_truth(rng, fake, loc, rng.randint(1, 8), rng.choice(currencies[code]))
            pdf = render_invoice(inv, loc, i % 3, credit=False, no_tax=False)
            if i % 5 == 4:
                pdf, _ = rasterise(pdf, dpi=150)  # scanned look: image only, OCR needed
                save(f"{code}-{i + 1:02d}-scan", inv, pdf)
            else:
                save(f"{code}-{i + 1:02d}-layout{i % 3}", inv, pdf)
        inv = make_truth(rng, fake, loc, 32 + rng.randint(0, 6), currencies[code][0])
        save(f"{code}-multipage", inv, render_invoice(inv, loc, 0, credit=False, no_tax=False))
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    inv = make_truth(rng, fake, LOCALES["en"], 3, "GBP", credit=True)
    save("en-credit-note", inv, render_invoice(inv, LOCALES["en"], 0, credit=True, no_tax=False))
    inv = make_truth(rng, fake, LOCALES["fr"], 4, "EUR", no_tax=True)
    save("fr-no-tax", inv, render_invoice(inv, LOCALES["fr"], 1, credit=False, no_tax=True))
    for code, layout in (("de", 1), ("en", 2)):  # a discount and shipping below the rows
        fake = Faker(LOCALES[code].faker)
        fake.seed_instance(seed + layout)
        inv = make_truth(rng, fake, LOCALES[code], 3, currencies[code][0], adjusted=True)
        save(f"{code}-allowance-charge", inv, render_invoice(inv, LOCALES[code], layout, credit=False, no_tax=False))
    return written
