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

A two-column header read across (the seller's block left, the buyer's right, the seller's address
running onto the line of the buyer's VAT id) gave each party the other's id, both printed, so
nothing flagged it.  Where each party's id is printed in the other's block (under its name, its
label in the name's column) and neither in its own, they are swapped back, and recorded.  On 114
recorded documents (dev sets, three world probes) it fired on the two that were so, on no other.
(Doubting the addresses too was tried: of three such documents, one had an address wrong, which
``misplaced_ids`` finds by itself, and two were right.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from pipeline.ground.index import PageIndex
from pipeline.rules.blocks import BLOCK, NEAR
from pipeline.rules.evidence import Doubt, compact, is_vat_id, printed_vat_ids, unheld_vat_ids, vat_fields
from pipeline.rules.parties import party_fields, party_labels, plain_box, words_before
from pipeline.schema.paths import bare, has_type, node_at
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
    inside = _in_block(page, first, buyer_name)
    return True if inside is None else inside


def _in_block(page: PageIndex, first: int, name: str) -> bool | None:
    """Whether the identifier starting at word ``first`` is printed in the block ``name`` heads:
    under the name, its label starting in the name's column; None where the name is not printed plainly."""
    box = plain_box(name, page)
    if box is None:
        return None
    word = page.words[first]
    label = words_before(page, word[0], word[1])
    start = label[0][0] if label else word[0]
    return 0 <= word[1] - box[1] <= BLOCK and abs(start - box[0]) <= NEAR


def uncross_vat_ids(record: dict[str, Any], schema: dict[str, Any],
                    page: PageIndex) -> tuple[dict[str, Any], list[str]]:
    """``record`` with its parties' VAT ids swapped where each is printed in the other party's block
    and neither in its own (a two-column header read across: the model took the id printed beside
    the seller's address line for the buyer's), and the note."""
    parties = party_fields(schema)
    if parties is None:
        return record, []
    read = [record.get(party) or {} for party in parties]  # each party as the model read it
    held = {party: (key, value) for party, key, value in _party_ids(record, schema) if isinstance(value, str)}
    printed = printed_vat_ids(page)
    if any(party not in held or compact(held[party][1]) not in printed for party in parties):
        return record, []
    where = [printed[compact(held[party][1])] for party in parties]
    blocks = [[_in_block(page, first, str(party.get("name") or "")) for party in read] for first in where]
    if not (blocks[0][1] and blocks[1][0] and blocks[0][0] is False and blocks[1][1] is False):
        return record, []
    (seller_key, seller_id), (buyer_key, buyer_id) = held[parties[0]], held[parties[1]]
    swapped = {**record, parties[0]: {**read[0], seller_key: buyer_id}, parties[1]: {**read[1], buyer_key: seller_id}}
    note = (f"{parties[0]}.{seller_key} <-> {parties[1]}.{buyer_key}: {seller_id!r} is printed in the "
            f"{parties[1]}'s block and {buyer_id!r} in the {parties[0]}'s")
    return swapped, [note]


def misplaced_ids(record: dict[str, Any], schema: dict[str, Any]) -> list[Doubt]:
    """A party's VAT id that is no VAT id but a number of its own address (its postcode: a page that
    prints no id), and a party's address that is its VAT id's line (the id and no other number): a
    block read line by line into the wrong fields, each value printed, so nothing else flagged them."""
    doubts: list[Doubt] = []
    for party, id_key, value in _party_ids(record, schema):
        path, held = f"{party}.{id_key}", record.get(party)
        if not isinstance(held, dict):
            continue
        for key in _block_text(schema, party):
            text = held.get(key)
            if not isinstance(text, str):
                continue
            tokens = [compact(t) for t in re.split(r"[\s,;()]+", text) if t]
            ids = [t for t in tokens if is_vat_id(t)]
            if isinstance(value, str) and compact(value) in tokens and not is_vat_id(compact(value)):
                doubts.append((path, f"{value!r} is a number of the {party}'s {key}, not a VAT id"))
            if ids and not any(re.search(r"\d", t) for t in tokens if t not in ids):
                doubts.append((f"{party}.{key}", f"{text!r} is the line of the VAT id {ids[0]!r}: it has no "
                                                 "other number"))
    return doubts


def _party_ids(record: dict[str, Any], schema: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The VAT id fields of the parties (top-level objects): (party, the field's key, its value)."""
    return [(path.split(".")[0], path.split(".", 1)[1], value) for path, value in vat_fields(record, schema)
            if path.count(".") == 1]


def _block_text(schema: dict[str, Any], party: str) -> list[str]:
    """A party's fields read from its block's lines besides its name and identifiers: the plain
    strings (no format, pattern or ``x-identifier``), such as its address."""
    node = bare(node_at(schema, party), schema) or {}
    fields = {key: bare(sub, schema) or {} for key, sub in (node.get("properties") or {}).items()}
    return [key for key, sub in fields.items() if key != "name" and has_type(sub, "string")
            and not {"format", "pattern", "enum", "x-identifier"} & set(sub)]
