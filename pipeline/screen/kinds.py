"""What kind of page this is, from its words, before any model reads it.

A small model asked to fill an invoice schema fills it whatever the page is: a blank page, a
cover letter or a page of terms came back as invoices with invented numbers and totals.  So a
page's kind is decided first, cheaply and deterministically, and only the kinds the schema is
for (``x-document-kinds``) are given to the model; every other page gets a row with its kind
and no values.

The title decides where there is one: a kind's name printed large or at the top of the page
("Rechnung", "Credit note", "Lieferschein", "Purchase order", "Terms and conditions"), and not
as a reference or a label ("Order no. 4711", "Lieferschein-Nr.", "Invoice address" are what an
invoice prints).  Without a title the body decides: a letter's salutation or closing (without
prices), numbered clauses of terms, amounts with a total.  A page with no readable text is blank
when its image is near-uniform.  A page that matches nothing is ``other``; it is read when it
prints amounts (the continuation page of a long invoice has rows but no title) or is read with
an invoice page, and not otherwise (there is nothing to extract).
A till's slip is a receipt whatever its title: where tax law calls it a "(simplified) tax invoice",
a page that names its cashier or the change given back (or shows two other signs of a till: the
card or cash tendered, the article count, cash rounding, the time of sale) was paid at a counter,
and has a receipt's values (a seller, a date, a total), not an invoice's (a number, a buyer, a due
date).
The lexicon names invoices, credit notes and receipts in the Latin-script languages of the EU and
EEA and in Turkish (the other kinds, letters, terms and tills in English, German, French, Spanish,
Italian and Dutch); no kept library has this vocabulary.  A title it does not know leaves the page
``other``: read when it prints amounts, and flagged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipeline.errors import SchemaError
from pipeline.render.textlayer import Word, lines_of
from pipeline.text import fold_words

KINDS = ("invoice", "credit_note", "receipt", "delivery_note", "order", "letter", "terms", "blank", "other")
DEFAULT_EXTRACT = ("invoice", "credit_note", "receipt")

TITLES: dict[str, tuple[str, ...]] = {
    "credit_note": ("credit note", "credit memo", "gutschrift", "rechnungskorrektur", "stornorechnung", "avoir",
                    "note de credit", "facture d'avoir", "nota de credito", "nota di credito", "creditnota",
                    "kreditnota", "kreditfaktura", "hyvityslasku", "faktura korygujaca", "dobropis",
                    "opravny danovy doklad", "jovairo szamla", "factura storno", "factura de stornare"),
    "invoice": ("invoice", "tax invoice", "rechnung", "facture", "factura", "fattura", "faktura", "factuur",
                "cash bill", "proforma", "fatura", "lasku", "szamla", "racun", "arve", "rekins", "saskaita faktura"),
    "receipt": ("receipt", "cash receipt", "sales receipt", "kassenbon", "kassenbeleg", "quittung", "bon",
                "recu", "ticket de caisse", "ticket", "recibo", "ricevuta", "scontrino", "kassabon", "kvitto",
                "kvittering", "kuitti", "paragon", "uctenka", "nyugta", "bon fiscal", "talao"),
    "delivery_note": ("delivery note", "packing slip", "packing list", "dispatch note", "delivery receipt",
                      "lieferschein", "bon de livraison", "albaran", "bolla di consegna", "documento di trasporto",
                      "pakbon"),
    "order": ("purchase order", "order confirmation", "order", "bestellung", "auftragsbestatigung", "bestellschein",
              "bon de commande", "confirmation de commande", "commande", "pedido", "orden de compra", "ordine",
              "bestelling"),
    "terms": ("terms and conditions", "general terms", "terms of sale", "conditions of sale", "terms & conditions",
              "allgemeine geschaftsbedingungen", "agb", "geschaftsbedingungen", "conditions generales",
              "conditions generales de vente", "cgv", "terminos y condiciones", "condizioni generali",
              "algemene voorwaarden"),
}
TITLE_WORDS = 4  # a title line that is not in large print has at most this many words
# German names a compound ends in: "Handelsrechnung", "Kostenrechnung", "Sammellieferschein"
COMPOUND_HEADS = frozenset({"rechnung", "gutschrift", "lieferschein", "bestellung", "quittung", "kassenbon"})
# after a kind's name, these make it a label of something else: "Invoice address", "Invoice to:"
LABEL = re.compile(r"^\s*(?:to\b|address|adresse|anschrift|recipient|empfanger|contact|details|copy to|period)")
# after a kind's name, these make it a reference to another document, not the page's title
REFERENCE = re.compile(r"^\s*(?:no\b|nr\b|n[o°º]|number|num\b|#|-?nummer|-?nr|id\b|ref|date|datum|du\b|vom\b|"
                       r"\(|:?\s*\S*\d)")
SALUTATION = re.compile(r"^(?:dear|hello|hi|sehr geehrte|liebe[rs]?|guten tag|madame|monsieur|cher|chere|bonjour|"
                        r"estimad[oa]s?|gentile|egregi[oa]|geachte|beste)\b")
CLOSING = re.compile(r"\b(?:sincerely|kind regards|best regards|yours faithfully|yours truly|regards,|"
                     r"mit freundlichen grussen|freundliche grusse|cordialement|veuillez agreer|salutations|"
                     r"atentamente|cordiali saluti|distinti saluti|met vriendelijke groet)")
CLAUSE = re.compile(r"^(?:§\s*\d+|\d{1,2}\.(?:\d{1,2}\.?)?\s+[a-z]|article\s+\d+|artikel\s+\d+|art\.\s*\d+|"
                    r"clause\s+\d+|ziffer\s+\d+)")
AMOUNT = re.compile(r"(?<![\d.,])\d{1,3}(?:[.,' ]\d{3})*[.,]\d{2}(?![\d.,])")
ITEMISED = 3  # amounts with cents on a page that bills something, whatever else it is
# a sale at a counter: the cashier who took it, or the change handed back ("Change 0.00", "Rückgeld 2,50")
TILL = re.compile(r"\b(?:cashier|kassierer(?:in)?|caissier(?:e)?|cajer[oa]|cassier[ea]|kassamedewerker)\b|"
                  r"\b(?:change(?: due| amt)?|wechselgeld|ruckgeld|rendu|monnaie rendue|vuelto|cambio|resto|"
                  r"wisselgeld)\s*[:.]?\s*(?:[a-z]{1,3}\s?|[$€£¥]\s?)?-?\d+[.,]\d{2}(?![\d.,])")
# what a till prints and an invoice seldom does; one of them is no proof (a web shop's invoice prints
# the card it was paid with, a Swiss one its "Rundung", a ticket its time of day): two are, one of
# them the tender or the article count (``COUNTER_SIGNS[:STRONG]``)
COUNTER_SIGNS = (
    # the tender, first on its line with the amount handed over: "VISA 50.90", "EDC RM 96.90", "Bar 20,00"
    re.compile(r"^(?:paid by |by )?(?:cash|credit card|debit card|card|visa|master ?card|amex|edc|eftpos|tunai|"
               r"bar|bargeld|girocard|ec[- ]?karte|especes|carte bancaire|efectivo|tarjeta|contanti|carta|"
               r"contant|pin)\b\W{0,3}(?:[a-z]{1,3}\s?|[$€£¥]\s?)?\d+[.,]\d{2}(?![\d.,])"),
    # the number of articles sold: "Item Count 9", "Item(s) :4", "No of items: 11", "Total Qty : 6"
    re.compile(r"\b(?:item count|items?\s*\(s\)|no\.? of items|number of items|total (?:qty|quantity|items)|"
               r"qty\s*\(s\)|anzahl artikel|artikelanzahl|nombre d'articles|n\.? articoli|aantal artikelen)"
               r"\s*[:.]?\s*\d+(?![\d.,])"),
    # cash rounding: "Rounding Adj -0.02", "Rundung 0,03"
    re.compile(r"\b(?:rounding(?: adj(?:ustment)?)?|rundung|arrondi|redondeo|arrotondamento|afronding)\b\W{0,3}"
               r"(?:[a-z]{1,3}\s?)?-?\d+[.,]\d{2}(?![\d.,])"),
    # the time of the sale beside its date: "14/04/2018 18:30", "23 May 2018 18:33"
    re.compile(r"(?:\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\b(?:19|20)\d{2})\b.{0,12}\b[0-2]?\d:[0-5]\d\b"),
)
STRONG = 2
TOTAL = re.compile(r"\b(?:total|subtotal|amount due|balance|summe|gesamt|betrag|endbetrag|montant|a payer|"
                   r"importe|totale|importo|totaal|bedrag|net|netto|mwst|ust|vat|tva|iva|gst|tax|yhteensa|"
                   r"osszesen|razem|celkem|i alt|totalt|summa|moms|mva|alv|afa|dph|pvm|btw|kdv)\b")


def schema_kinds(schema: dict[str, Any]) -> tuple[str, ...]:
    """The page kinds a schema is for: its ``x-document-kinds``, or invoices, credit notes and receipts."""
    kinds = schema.get("x-document-kinds")
    if kinds is None:
        return DEFAULT_EXTRACT
    if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
        raise SchemaError(f"x-document-kinds must be a non-empty list of {', '.join(KINDS)}; got {kinds!r}")
    return tuple(kinds)


def page_kind(words: Sequence[Word], blank_image: bool | None = None) -> str:
    """The kind of a page from its (visible, screened) words; ``blank_image``: whether its image is
    near-uniform, for a page without words (None: not known)."""
    if not any(any(ch.isalnum() for ch in w[4]) for w in words):
        return "blank" if blank_image in (True, None) else "other"
    lines = lines_of(words)
    folded = [fold_words(" ".join(w[4] for w in line)) for line in lines]
    title = _title_kind(lines, folded)
    till = _paid_at_counter(folded)  # "TAX INVOICE ... Cashier: Ana ... Change 0.00"
    if title is not None:
        return "receipt" if till and title == "invoice" else title
    body = "\n".join(folded)
    itemised = _itemised(body)
    priced = itemised and bool(TOTAL.search(body))  # amounts and a total
    if itemised:  # named in the body ("Invoice number 17", "Beitragsrechnung"): the first kind
        named = [kind for line in folded if (kind := _named(line, reference_ok=True)) in DEFAULT_EXTRACT]
        if named:  # an insurer's premium invoice is written as a letter, with its amounts and no "total"
            return "receipt" if till and named[0] == "invoice" else named[0]
    if till and itemised:  # a letter that mentions a cashier bills nothing
        return "receipt"
    if (any(SALUTATION.search(line) for line in folded) or CLOSING.search(body)) and not priced:
        return "letter"
    if sum(bool(CLAUSE.search(line)) for line in folded) >= 3 and not priced:
        return "terms"
    return "other"


def extracted(kind: str, words: Sequence[Word], kinds: Sequence[str], with_wanted: bool = False) -> bool:
    """Whether a page of ``kind`` goes to the model: a kind the schema is for, or a page of no known
    kind that prints amounts (a continuation page; a payment slip's "Total Rs 1939" without cents
    too) or is read with a page of a wanted kind (``with_wanted``: the header page of a document
    whose title is on another page).  A letter or terms page that prints several amounts bills
    something the lexicon did not name, and is read too.  A document none of whose pages is of a
    wanted kind is read and flagged (``merge.review``), never skipped as silently fine."""
    if kind in kinds:
        return True
    if kind in ("letter", "terms"):
        return _itemised(" ".join(w[4] for w in words))
    return kind == "other" and (with_wanted or bool(AMOUNT.search(" ".join(w[4] for w in words))) or any(
        TOTAL.search(line) and re.search(r"\d\d", line) for line in (fold_words(" ".join(w[4] for w in ln))
                                                                      for ln in lines_of(words))))


def _paid_at_counter(folded: list[str]) -> bool:
    """Whether the page names its cashier or the change given back, or shows two of a till's other
    signs (``COUNTER_SIGNS``): a slip whose OCR garbled "Change" still prints the card it was paid
    with, its article count and its time of sale."""
    if any(TILL.search(line) for line in folded):
        return True
    shown = [any(sign.search(line) for line in folded) for sign in COUNTER_SIGNS]
    return any(shown[:STRONG]) and sum(shown) >= 2


def _title_kind(lines: list[list[Word]], folded: list[str]) -> str | None:
    """The kind named by the page's title: its largest text (a number after the name is the page's
    own), else one of its first lines (where a number after the name makes it a reference)."""
    heights = [max(w[3] - w[1] for w in line) for line in lines]
    body = sorted(heights)[len(heights) // 2]
    top = max(heights)
    if top >= body * 1.3:
        for line, height in zip(folded, heights, strict=True):
            if height >= top * 0.9 and (kind := _named(line, reference_ok=True, within=20)):
                return kind
    for line in folded[:6]:  # an invoice named at the top is one, even with its number after the name;
        # another kind only as a short line of its own ("Order placed: 1 May 2026" is an invoice's line)
        if (kind := _named(line, reference_ok=True, within=0)) in DEFAULT_EXTRACT or \
                (len(line.split()) <= TITLE_WORDS and (kind := _named(line, reference_ok=False, within=0))):
            return kind
    return None


_NAMES = sorted(((name, kind) for kind, names in TITLES.items() for name in names), key=lambda nk: -len(nk[0]))


def _named(line: str, reference_ok: bool, within: int | None = None) -> str | None:
    """The kind ``line`` names first (the longest name where two start together), or None; a name
    followed by a number or "no." names another document unless ``reference_ok``.  ``within``: only
    a name in the line's first so many characters counts (0: the line starts with it, or with a
    compound ending in it)."""
    best: tuple[int, str] | None = None
    for name, kind in _NAMES:
        left = "" if name in COMPOUND_HEADS else "(?<![a-z])"
        for match in re.finditer(rf"{left}{re.escape(name)}(?![a-z])", line):
            prefix = line[:match.start()]
            if within == 0 and re.search(r"[a-z]", prefix) and not (
                    name in COMPOUND_HEADS and re.fullmatch(r"[^a-z]*[a-z]+", prefix)):
                break
            if within and len(prefix) > within:
                break
            rest = line[match.end():]
            if LABEL.search(rest) or (not reference_ok and REFERENCE.search(rest)):
                continue
            if best is None or match.start() < best[0]:
                best = (match.start(), kind)
            break
    return best[1] if best else None


def _itemised(text: str) -> bool:
    """Several amounts with cents: a page that bills something (a cover letter names one amount)."""
    return len(AMOUNT.findall(text)) >= ITEMISED


def document_kind(kinds: Sequence[str | None], schema: dict[str, Any]) -> str | None:
    """A document's kind from its pages': the first kind the schema is for (a cover letter before an
    invoice makes an invoice), else the first that is neither blank nor other, else other or blank."""
    known = [k for k in kinds if k]
    read = schema_kinds(schema)
    for wanted in (lambda k: k in read, lambda k: k not in ("blank", "other"), lambda k: k == "other"):
        found = next((k for k in known if wanted(k)), None)
        if found:
            return found
    return known[0] if known else None
