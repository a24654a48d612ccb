"""Invoices in languages and locales the dev set does not have, with ground truth (deterministic by seed).

The real dev set is German, English and French, and hidden documents are not: a Dutch date, a
Danish "kr.", a US month-first date, a forint without cents.  Amounts and dates here are written
by Babel in each locale's own CLDR forms (long, medium and short dates in turn), the currency is
the country's, VAT ids take the country's form, addresses come from Faker's locale; only the
labels are written by hand (test data, not the pipeline's knowledge).  Run it with the model and
score it like the real sets: what is wrong must be flagged.  Each locale is one family of
``benchmarks/_split.py`` (a half to study, a half only to score).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from pipeline.devtools.evalset import EN_MONTHS, PRODUCTS, Locale, make_truth, render_invoice

_KEYS = ("invoice", "number", "date", "due", "from", "to", "vat", "desc", "qty", "price", "amount", "net", "tax",
         "total")


def _locale(cldr: str, faker: str, labels: str, rate: float, prefix: str, vat: str | None,
            products: str) -> Locale:
    """``labels``: the 14 labels of ``_KEYS`` joined by "|"; ``products``: row texts joined by "|"."""
    words = dict(zip(_KEYS, labels.split("|"), strict=True))
    return Locale(cldr.split("_")[0], faker, {**words, "credit": "", "notax": "", "page": "", "rows": "",
                                              "allowance": "", "charge": ""},
                  ",", ".", "long", EN_MONTHS, cldr.split("_")[1], rate, prefix, vat,
                  tuple(products.split("|")), cldr)


WORLD = (
    _locale("nl_NL", "nl_NL", "FACTUUR|Factuurnummer|Factuurdatum|Vervaldatum|Van|Factuur aan|Btw-nummer|"
            "Omschrijving|Aantal|Stukprijs|Bedrag|Subtotaal|Btw 21%|Totaal", 0.21, "F", "NL#########B01",
            "Adviesdiensten|Softwarelicentie|Bureaustoel|Onderhoudscontract"),
    _locale("it_IT", "it_IT", "FATTURA|Numero fattura|Data fattura|Scadenza|Fornitore|Cliente|Partita IVA|"
            "Descrizione|Quantità|Prezzo unitario|Importo|Imponibile|IVA 22%|Totale", 0.22, "FT", "IT###########",
            "Consulenza|Licenza software|Sedia da ufficio|Contratto di assistenza"),
    _locale("es_ES", "es_ES", "FACTURA|Número de factura|Fecha de factura|Vencimiento|Emisor|Cliente|NIF-IVA|"
            "Descripción|Cantidad|Precio unitario|Importe|Base imponible|IVA 21%|Total", 0.21, "FAC",
            "ESB########", "Servicios de consultoría|Licencia de software|Silla de oficina|Contrato de soporte"),
    _locale("pt_PT", "pt_PT", "FATURA|Fatura n.º|Data da fatura|Data de vencimento|Fornecedor|Cliente|NIF|"
            "Descrição|Quantidade|Preço unitário|Valor|Total sem IVA|IVA 23%|Total", 0.23, "FT", "PT#########",
            "Serviços de consultoria|Licença de software|Cadeira de escritório|Contrato de suporte"),
    _locale("pl_PL", "pl_PL", "FAKTURA|Numer faktury|Data wystawienia|Termin płatności|Sprzedawca|Nabywca|NIP|"
            "Opis|Ilość|Cena jednostkowa|Wartość|Wartość netto|VAT 23%|Razem do zapłaty", 0.23, "FV", "PL##########",
            "Usługi doradcze|Licencja na oprogramowanie|Krzesło biurowe|Umowa serwisowa"),
    _locale("sv_SE", "sv_SE", "FAKTURA|Fakturanummer|Fakturadatum|Förfallodatum|Från|Faktureras till|Momsreg.nr|"
            "Beskrivning|Antal|À-pris|Belopp|Summa exkl. moms|Moms 25%|Att betala", 0.25, "F", "SE##########01",
            "Konsulttjänster|Programvarulicens|Kontorsstol|Supportavtal"),
    _locale("nb_NO", "no_NO", "FAKTURA|Fakturanummer|Fakturadato|Forfallsdato|Fra|Faktureres til|Org.nr.|"
            "Beskrivelse|Antall|Enhetspris|Beløp|Sum eks. mva|MVA 25%|Å betale", 0.25, "F", "NO#########MVA",
            "Konsulenttjenester|Programvarelisens|Kontorstol|Serviceavtale"),
    _locale("da_DK", "da_DK", "FAKTURA|Fakturanummer|Fakturadato|Forfaldsdato|Fra|Faktureres til|CVR-nr.|"
            "Beskrivelse|Antal|Enhedspris|Beløb|Subtotal|Moms 25%|I alt", 0.25, "F", "DK########",
            "Konsulentydelser|Softwarelicens|Kontorstol|Serviceaftale"),
    _locale("fi_FI", "fi_FI", "LASKU|Laskun numero|Laskun päivämäärä|Eräpäivä|Myyjä|Ostaja|ALV-tunnus|Kuvaus|"
            "Määrä|Yksikköhinta|Summa|Veroton summa|ALV 25,5%|Yhteensä", 0.255, "L", "FI########",
            "Konsultointipalvelut|Ohjelmistolisenssi|Työtuoli|Tukisopimus"),
    _locale("cs_CZ", "cs_CZ", "FAKTURA|Číslo faktury|Datum vystavení|Datum splatnosti|Dodavatel|Odběratel|DIČ|"
            "Popis|Množství|Cena za jednotku|Částka|Základ daně|DPH 21%|Celkem k úhradě", 0.21, "FV", "CZ########",
            "Poradenské služby|Softwarová licence|Kancelářská židle|Servisní smlouva"),
    _locale("hu_HU", "hu_HU", "SZÁMLA|Számlaszám|Számla kelte|Fizetési határidő|Eladó|Vevő|Közösségi adószám|"
            "Megnevezés|Mennyiség|Egységár|Összeg|Nettó összesen|ÁFA 27%|Bruttó összesen", 0.27, "SZ",
            "HU########", "Tanácsadás|Szoftverlicenc|Irodai szék|Szervizszerződés"),
    _locale("ro_RO", "ro_RO", "FACTURĂ|Număr factură|Data facturii|Data scadenței|Furnizor|Cumpărător|Cod TVA|"
            "Descriere|Cantitate|Preț unitar|Valoare|Total fără TVA|TVA 19%|Total de plată", 0.19, "FCT",
            "RO########", "Servicii de consultanță|Licență software|Scaun de birou|Contract de service"),
    _locale("en_US", "en_US", "INVOICE|Invoice #|Invoice Date|Due Date|From|Bill To|Tax ID|Description|Qty|"
            "Unit Price|Amount|Subtotal|Sales Tax 8%|Total Due", 0.08, "INV", None, "|".join(PRODUCTS["en"][:6])),
    _locale("en_AU", "en_AU", "TAX INVOICE|Invoice No.|Date|Due Date|From|Bill To|ABN|Description|Qty|Unit Price|"
            "Amount|Subtotal|GST|Total (incl. GST)", 0.10, "INV", None, "|".join(PRODUCTS["en"][4:])),
    _locale("hr_HR", "hr_HR", "RAČUN|Broj računa|Datum računa|Datum dospijeća|Prodavatelj|Kupac|OIB|Opis|Količina|"
            "Jedinična cijena|Iznos|Osnovica|PDV 25%|Ukupno za platiti", 0.25, "R", "HR###########",
            "Savjetodavne usluge|Licenca za softver|Uredska stolica|Ugovor o održavanju"),
)
_WIDTHS = ("long", "medium", "short")


def generate_world(directory: Path, seed: int = 29, per_locale: int = 2) -> list[Path]:
    """Write ``per_locale`` one-page invoices per locale of ``WORLD`` (``world-<locale>-<n>.pdf``) with truth."""
    from dataclasses import replace

    from babel.numbers import get_territory_currencies
    from faker import Faker

    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    written: list[Path] = []
    for n, loc in enumerate(WORLD):
        fake = Faker(loc.faker)
        fake.seed_instance(seed + n)
        currency = get_territory_currencies(loc.country)[0]
        for i in range(per_locale):
            styled = replace(loc, date_style=_WIDTHS[(n + i) % len(_WIDTHS)])
            inv: dict[str, Any] = make_truth(rng, fake, styled, rng.randint(1, 5), currency)
            path = directory / f"world-{loc.cldr}-{i + 1}.pdf"
            path.write_bytes(render_invoice(inv, styled, (n + i) % 3, credit=False, no_tax=False))
            path.with_suffix(".json").write_text(json.dumps(inv, indent=2, ensure_ascii=False) + "\n", "utf-8")
            written.append(path)
    return written
