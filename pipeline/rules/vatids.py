"""The seller's VAT id, where the model took another number from the seller's block.

German invoices print a tax number beside the VAT id ("Steuernummer: 201/113/40209",
"USt.-Id.-Nr.: DE123456789"), and ZUGFeRD's stylesheets a GLN ("Globale Nummer: 4000001123452"):
a small model took either as the seller's ``vat_id`` on most of our e-invoices.  Such a record was
flagged (``evidence.vat_doubts``), though its name, dates and amounts were right.

The law decides whose id it is: an invoice must print its seller's VAT id (EU VAT Directive,
art. 226), a buyer's only where the buyer owes the tax (reverse charge), and then in the buyer's
block or beside a label naming the buyer.  So where the pages print exactly one VAT id no party
holds, the seller's field holds none, and the id is neither in the buyer's block nor labelled as
the buyer's, it is the seller's: taken, and recorded.  Every other case stays a doubt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from pipeline.ground.index import PageIndex
from pipeline.rules.blocks import BLOCK, NEAR
from pipeline.rules.evidence import compact, is_vat_id, unheld_vat_ids, vat_fields
from pipeline.rules.parties import party_fields, party_labels, plain_box, words_before
from pipeline.text import fold_words

YOURS = ("your", "yours", "ihre", "ihr", "votre", "vos", "su", "sus", "vostra", "vostro", "uw")  # "Ihre USt-IdNr."


@cache
def _buyers(labels: tuple[str, ...]) -> re.Pattern[str]:
    """A label naming the buyer: one of the buyer's block labels, or a word saying "yours"."""
    return re.compile(r"\b(?:" + "|".join(re.escape(word) for word in (*YOURS, *labels)) + r")\b")


def repair_seller_vat_id(record: dict[str, Any], schema: dict[str, Any],
                         pages: Sequence[PageIndex]) -> tuple[dict[str, Any], list[str]]:
    """``record`` with the seller's VAT id the one the pages print (see the module), and what changed."""
    parties = party_fields(schema)
    seller = record.get(parties[0]) if parties else None
    if parties is None or not isinstance(seller, dict) or not pages:
        return record, []
    fields = vat_fields(record, schema)
    mine = [(path, value) for path, value in fields if path.startswith(f"{parties[0]}.") and path.count(".") == 1]
    if len(mine) != 1 or (isinstance(mine[0][1], str) and is_vat_id(compact(mine[0][1]))):
        return record, []
    printed = unheld_vat_ids(fields, pages)
    if len({text for text, _, _ in printed}) != 1:
        return record, []
    buyer = record.get(parties[1])
    buyer_name = buyer.get("name") if isinstance(buyer, dict) else None
    buyers = _buyers(party_labels(schema).get("buyer", ()))
    if any(_the_buyers(page, first, buyer_name, buyers) for _, page, first in printed):
        return record, []
    path, old = mine[0]
    key = path.split(".", 1)[1]
    text = printed[0][0]
    return ({**record, parties[0]: {**seller, key: text}},
            [f"{path}: {old!r} -> {text!r} (the one VAT id the pages print, not the buyer's: a seller's by law)"])


def _the_buyers(page: PageIndex, first: int, buyer_name: Any, buyers: re.Pattern[str]) -> bool:
    """Whether the VAT id starting at word ``first`` is the buyer's: its label names the buyer
    ("Ihre USt-IdNr.", "Customer VAT"), or it is printed in the buyer's block (under the buyer's
    name, its label starting in the name's column).  A buyer's name the page does not print plainly
    leaves the block unknown: then it may be the buyer's."""
    word = page.words[first]
    label = words_before(page, word[0], word[1])
    if buyers.search(fold_words(" ".join(w[4] for w in label))):
        return True
    if not isinstance(buyer_name, str) or not buyer_name.strip():
        return False  # no buyer read: only the label can say
    box = plain_box(buyer_name, page)
    if box is None:
        return True
    x0, y0 = box[0], box[1]
    start = label[0][0] if label else word[0]
    return 0 <= word[1] - y0 <= BLOCK and abs(start - x0) <= NEAR
