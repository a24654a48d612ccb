"""Deterministic sample invoices with ground truth, for the demo, tests and evaluation.

Each invoice is drawn from a seeded Faker, laid out in one of several vendor styles with
fpdf2, and saved as ``NAME.pdf`` with ``NAME.json`` beside it holding the exact values in
the shape of ``schemas/invoice.json``.  Variants cover what real folders hold: a scanned
page (image-only PDF, no text layer), a multi-page invoice with many line items, and a PNG.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

CURRENCIES = {"EUR": "EUR", "USD": "USD", "GBP": "GBP", "CHF": "CHF"}
TAX_RATES = (0.2, 0.19, 0.1, 0.077)
PRODUCTS = (
    "Consulting hours", "Software licence", "Cloud hosting", "Support plan", "Laptop stand",
    "Office chair", "USB-C dock", "Printer toner", "Network switch", "Training session",
    "Data migration", "Security audit", "Desk lamp", "Monitor 27in", "Keyboard", "Webcam HD",
    "Project management", "Design workshop", "Server rack", "Backup storage",
)


def make_invoice(rng: random.Random, fake: Any, n_items: int) -> dict[str, Any]:
    """Ground truth of one invoice, internally consistent (lines sum to net, net + tax = total)."""
    issue = date(2025, 1, 1) + timedelta(days=rng.randrange(0, 600))
    due = issue + timedelta(days=rng.choice((14, 30, 45)))
    items: list[dict[str, Any]] = []
    for _ in range(n_items):
        qty = float(rng.randint(1, 20))
        price = round(rng.uniform(5, 500), 2)
        items.append({"description": rng.choice(PRODUCTS), "quantity": qty, "unit_price": price,
                      "amount": round(qty * price, 2)})
    net = round(sum(i["amount"] for i in items), 2)
    tax = round(net * rng.choice(TAX_RATES), 2)

    def party() -> dict[str, Any]:
        vat = f"{rng.choice(['DE', 'FR', 'GB', 'NL'])}{rng.randint(100000000, 999999999)}"
        return {"name": fake.company(), "vat_id": vat, "address": fake.address().replace("\n", ", ")}

    return {
        "invoice_number": f"INV-{issue.year}-{rng.randint(1000, 99999)}",
        "issue_date": issue.isoformat(), "due_date": due.isoformat(),
        "seller": party(), "buyer": party(),
        "currency": rng.choice(list(CURRENCIES)),
        "allowance_total": None, "charge_total": None,
        "net_amount": net, "tax_amount": tax, "total_amount": round(net + tax, 2),
        "line_items": items,
    }


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _date(iso: str, style: str) -> str:
    d = date.fromisoformat(iso)
    if style == "us":
        return d.strftime("%m/%d/%Y")
    if style == "long":
        return d.strftime("%B %d, %Y")
    return iso


def _items_table(pdf: Any, inv: dict[str, Any]) -> None:
    with pdf.table(col_widths=(90, 25, 35, 40), text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
                   repeat_headings=1, line_height=6) as table:
        table.row(("Description", "Qty", "Unit price", "Amount"))
        for it in inv["line_items"]:
            table.row((it["description"], f"{it['quantity']:g}", _money(it["unit_price"]),
                       _money(it["amount"])))


def _totals(pdf: Any, inv: dict[str, Any]) -> None:
    pdf.ln(4)
    for label, key in (("Net", "net_amount"), ("Tax", "tax_amount"), ("Total due", "total_amount")):
        pdf.cell(150, 6, label, align="R")
        pdf.cell(40, 6, f"{_money(inv[key])} {inv['currency']}", align="R", new_x="LMARGIN", new_y="NEXT")


def _party_block(pdf: Any, title: str, p: dict[str, Any], x: float, y: float, w: float = 85) -> None:
    pdf.set_xy(x, y)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(w, 5, title, new_x="LEFT", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(w, 5, f"{p['name']}\n{p['address']}\nVAT: {p['vat_id']}", new_x="LEFT", new_y="NEXT")


def layout_classic(pdf: Any, inv: dict[str, Any]) -> None:
    _party_block(pdf, "From", inv["seller"], 10, 10)
    pdf.set_xy(120, 10)
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(80, 10, "INVOICE", align="R", new_x="LEFT", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for label, value in (("Invoice no.", inv["invoice_number"]), ("Date", _date(inv["issue_date"], "iso")),
                         ("Due date", _date(inv["due_date"], "iso"))):
        pdf.set_x(120)
        pdf.cell(80, 6, f"{label}: {value}", align="R", new_x="LEFT", new_y="NEXT")
    _party_block(pdf, "Bill to", inv["buyer"], 10, 50)
    pdf.set_xy(10, 85)
    pdf.set_font("Helvetica", "", 9)
    _items_table(pdf, inv)
    _totals(pdf, inv)


def layout_modern(pdf: Any, inv: dict[str, Any]) -> None:
    pdf.set_fill_color(30, 60, 120)
    pdf.rect(0, 0, 210, 28, style="F")
    pdf.set_text_color(255, 255, 255)
    pdf.set_xy(10, 8)
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(120, 10, inv["seller"]["name"])
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(70, 10, f"Invoice {inv['invoice_number']}", align="R")
    pdf.set_text_color(0, 0, 0)
    pdf.set_fill_color(255, 255, 255)
    _party_block(pdf, "Seller", inv["seller"], 10, 35)
    _party_block(pdf, "Customer", inv["buyer"], 110, 35)
    pdf.set_xy(10, 70)
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(95, 6, f"Issued: {_date(inv['issue_date'], 'long')}")
    pdf.cell(95, 6, f"Payment due: {_date(inv['due_date'], 'long')}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 9)
    _items_table(pdf, inv)
    _totals(pdf, inv)


def layout_compact(pdf: Any, inv: dict[str, Any]) -> None:
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 8, f"Tax invoice {inv['invoice_number']}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    lines = [
        f"Supplier: {inv['seller']['name']}, {inv['seller']['address']} (VAT {inv['seller']['vat_id']})",
        f"Customer: {inv['buyer']['name']}, {inv['buyer']['address']} (VAT {inv['buyer']['vat_id']})",
        f"Invoice date {_date(inv['issue_date'], 'us')} - due {_date(inv['due_date'], 'us')}",
        f"All amounts in {inv['currency']}",
    ]
    for line in lines:
        pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    _items_table(pdf, inv)
    _totals(pdf, inv)


LAYOUTS: dict[str, Callable[[Any, dict[str, Any]], None]] = {
    "classic": layout_classic, "modern": layout_modern, "compact": layout_compact,
}


def render_pdf(inv: dict[str, Any], layout: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_margins(10, 10, 10)
    pdf.add_page()
    LAYOUTS[layout](pdf, inv)
    return bytes(pdf.output())


def rasterise(pdf_bytes: bytes, dpi: int = 110) -> tuple[bytes, bytes]:
    """(image-only PDF like a scan, PNG of page 1) from a PDF."""
    import pymupdf as fitz

    with fitz.open(stream=pdf_bytes, filetype="pdf") as src, fitz.open() as out:
        png = b""
        for page in src:
            pix = page.get_pixmap(dpi=dpi, colorspace=fitz.csGRAY)
            data = pix.tobytes("png")
            png = png or data
            new = out.new_page(width=page.rect.width, height=page.rect.height)
            new.insert_image(new.rect, stream=data)
        return out.tobytes(deflate=True), png


def generate(directory: Path, seed: int = 7, count: int = 4) -> list[Path]:
    """Write ``count`` single-page invoices plus a scanned, a multi-page and a PNG variant."""
    from faker import Faker

    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    written: list[Path] = []

    def save(name: str, inv: dict[str, Any], data: bytes, suffix: str) -> None:
        path = directory / f"{name}{suffix}"
        path.write_bytes(data)
        (directory / f"{name}.json").write_text(json.dumps(inv, indent=2) + "\n", encoding="utf-8")
        written.append(path)

    names = list(LAYOUTS)
    for i in range(count):
        layout = names[i % len(names)]
        inv = make_invoice(rng, fake, rng.randint(2, 6))
        save(f"invoice-{i + 1:03d}-{layout}", inv, render_pdf(inv, layout), ".pdf")
    inv = make_invoice(rng, fake, 3)
    scan_pdf, _ = rasterise(render_pdf(inv, "classic"))
    save("scanned-001", inv, scan_pdf, ".pdf")
    inv = make_invoice(rng, fake, 45)
    save("multipage-001", inv, render_pdf(inv, "modern"), ".pdf")
    inv = make_invoice(rng, fake, 4)
    _, png = rasterise(render_pdf(inv, "compact"), dpi=100)
    save("photo-001", inv, png, ".png")
    return written


def many_pages_pdf(path: Path, pages: int, seed: int = 3) -> Path:
    """One PDF with ``pages`` invoice pages, for streaming and memory runs."""
    from faker import Faker
    from fpdf import FPDF

    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    for _ in range(pages):
        pdf.add_page()
        layout_compact(pdf, make_invoice(rng, fake, rng.randint(2, 5)))
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path
