"""Seller or buyer, from the page's evidence rather than from the order the names come in.

A small model takes the first name in the text as the seller; on many invoices that is the
buyer's address block (the seller's name is in a logo, or on the right).  The page usually says
who is who: a label above or before a block ("Bill to", "Rechnungsempfänger", "Facturé à";
"From", "Lieferant", "Fournisseur"), and the seller's own contact line (an e-mail address or web
site whose domain carries its name).  The schema names the two parties with
``"x-party": "seller"`` and ``"x-party": "buyer"``; where the evidence says the model has them the
wrong way round, and nothing says otherwise, they are swapped, and the swap is recorded.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from cleanco.clean import get_unique_terms, normalize_terms

from pipeline.consensus.locale import month_words
from pipeline.consensus.normalize import normalize_date
from pipeline.ground.index import PageIndex, Word
from pipeline.ground.sources import locate
from pipeline.rules.blocks import NEAR, block_name
from pipeline.rules.evidence import Doubt
from pipeline.schema.paths import x_labels
from pipeline.text import fold, fold_words, tokens

# a line that names a reference or a contact person, not a party: "Referenz des Käufers : Liselotte
# Müller", "Buyer reference:", "Ansprechpartner:", "Attn:", "z. Hd.", "T.a.v."
REFERENCE = re.compile(r"\b(?:referenz|reference|ref|zeichen|contact|ansprechpartner|attn|attention|z ?hd|zu handen|"
                       r"bearbeiter|sachbearbeiter|interlocuteur|referencia|riferimento|referentie|t ?a ?v)\b")


def party_labels(schema: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """How pages label each party's block ("bill to", "lieferant"), by role: the ``x-labels`` of the
    fields marked ``x-party``, folded."""
    out = {}
    for name, node in (schema.get("properties") or {}).items():
        if isinstance(node, dict) and node.get("x-party") in ("seller", "buyer"):
            out[node["x-party"]] = tuple(fold_words(label) for label in x_labels(node, name) or ())
    return out


def party_fields(schema: dict[str, Any]) -> tuple[str, str] | None:
    """The top-level properties marked as the seller and the buyer, if the schema has both."""
    marked = {v.get("x-party"): k for k, v in (schema.get("properties") or {}).items() if isinstance(v, dict)}
    return (marked["seller"], marked["buyer"]) if "seller" in marked and "buyer" in marked else None


def repair_parties(record: dict[str, Any], schema: dict[str, Any],
                   page: PageIndex) -> tuple[dict[str, Any], str | None, list[Doubt]]:
    """``record`` with its parties the right way round, why they were swapped (None: kept), and
    the party names in doubt: seller and buyer one name (one of them was read twice), or a seller
    the page labels as the buyer with nothing to swap it with (the seller's own name is in a logo
    the text does not have)."""
    fields = party_fields(schema)
    if fields is None:
        return record, None, []
    seller, buyer = (record.get(name) for name in fields)
    if not isinstance(seller, dict) or not isinstance(buyer, dict):
        return record, None, []
    labels = party_labels(schema)
    known = frozenset(label for role in labels.values() for label in role)
    unnamed = [(f"{field}.name", why) for field, party in zip(fields, (seller, buyer), strict=True)
               if (why := _not_a_name(_name(party), known))]
    unnamed += [(f"{field}.{key}", f"{text!r} is a date") for field, party in zip(fields, (seller, buyer), strict=True)
                for key, text in party.items() if isinstance(text, str) and _dated(text)]
    unnamed += [(f"{field}.name", why) for field, party in zip(fields, (seller, buyer), strict=True)
                if (why := _not_the_party(_name(party), page))]
    if unnamed:
        return _from_blocks(record, fields, unnamed, page, labels, known)
    if _name(seller).strip() and fold(_name(seller)) == fold(_name(buyer)):
        return record, None, [(f"{fields[0]}.name", f"seller and buyer are both {_name(seller)!r}")]
    said_seller = _role(_name(seller), page, labels)
    said_buyer = _role(_name(buyer), page, labels)
    wrong = (said_seller == "buyer" and said_buyer != "buyer") or (said_buyer == "seller" and said_seller != "seller")
    if said_seller == "buyer" and said_buyer == "buyer":
        return record, None, [(f"{fields[0]}.name", f"the seller {_name(seller)!r} is in the block the page "
                                                   "labels as the buyer's")]
    if not wrong:
        return record, None, []
    evidence = "; ".join(f"{who} {_name(p)!r} is marked as the {role} on the page"
                         for who, p, role in (("the seller", seller, said_seller), ("the buyer", buyer, said_buyer))
                         if role)
    return {**record, fields[0]: buyer, fields[1]: seller}, f"seller and buyer swapped: {evidence}", []


def _from_blocks(record: dict[str, Any], fields: tuple[str, str], unnamed: list[Doubt], page: PageIndex,
                 labels: dict[str, tuple[str, ...]],
                 known: frozenset[str]) -> tuple[dict[str, Any], str | None, list[Doubt]]:
    """``record`` with each party's name that is no name replaced by the one its labelled block prints
    (``rules.blocks``), what changed, and the doubts (kept: the reason says what was taken)."""
    notes, doubts = [], []
    for path, why in unnamed:
        field, key = path.split(".", 1)
        party = record.get(field)
        role = "seller" if field == fields[0] else "buyer"
        found = block_name(page, labels.get(role, ()), lambda text: _not_a_name(text, known) or (
            "a reference" if REFERENCE.search(fold_words(text)) else None)) if key == "name" else None
        if found is None or not isinstance(party, dict) or fold(found[0]) == fold(_name(party)):
            doubts.append((path, why))
            continue
        record = {**record, field: {**party, key: found[0]}}
        notes.append(f"{path}: {_name(party)!r} -> {found[0]!r} (the name under {found[1]!r}; {why})")
        doubts.append((path, f"{why}; took {found[0]!r}, the name under {found[1]!r}"))
    return record, "; ".join(notes) or None, doubts


def _not_a_name(name: str, labels: frozenset[str]) -> str | None:
    """Why a party's name is no name: a label ("Käufer", "Customer:2": the model read the block's
    label), an identifier ("GE2020211": the customer number printed above the name), or an e-mail
    or web address ("ME@BUYER.COM": the line under the name)."""
    words = [w for w in re.split(r"[\s:.#]+", fold_words(name)) if w and not w.isdigit()]
    if words and " ".join(words) in labels:
        return f"{name!r} is a label, not a name"
    if name.strip() and not any(t.isalpha() and len(t) >= 2 for t in tokens(name)):
        return f"{name!r} is an identifier, not a name"
    if re.fullmatch(r"\S+@\S+\.\w+|(?:https?://|www\.)\S+", name.strip(), re.IGNORECASE):
        return f"{name!r} is an address, not a name"
    return None


def plain_box(name: str, page: PageIndex) -> list[float] | None:
    """Where ``name`` is printed as written or normalised; None where it is not, or only fuzzily (a
    fuzzy match may span lines, and then says nothing of the line the name is on)."""
    if not name.strip():
        return None
    found = locate(name, "text", page, 1)
    return None if found["bbox"] is None or found["match"] == "fuzzy" else found["bbox"]


def _not_the_party(name: str, page: PageIndex) -> str | None:
    """Why a party's name, printed plainly, names someone else: a reference or a contact, or a
    trade name over the registered one."""
    box = plain_box(name, page)
    return None if box is None else _referenced(name, box, page) or _trade_name(name, box, page)


def _referenced(name: str, box: list[float], page: PageIndex) -> str | None:
    """Why a party's name is a person the page refers to, not the party: its line labels it as a
    reference or a contact ("Referenz des Käufers : Liselotte Müller" where the buyer's block, lines
    below, names a company; every sample read the person, grounding found her)."""
    before = fold_words(" ".join(w[4] for w in words_before(page, box[0], box[1])))
    return f"{name!r} is printed after {before!r}: a reference, not a party" if REFERENCE.search(before) else None


def words_before(page: PageIndex, x0: float, y0: float) -> list[Word]:
    """The words printed right before the text at (``x0``, ``y0``) on its line, in order, each at
    most ``NEAR`` / 2 from the next: its label, not another column's words."""
    line = sorted((w for w in page.words if abs(w[1] - y0) <= 4 and w[2] <= x0 + 1), key=lambda w: -w[2])
    run: list[Word] = []
    for word in line:
        if x0 - word[2] > NEAR / 2:
            break
        run.insert(0, word)
        x0 = word[0]
    return run


def _trade_name(name: str, box: list[float], page: PageIndex) -> str | None:
    """Why a party's name may be its trade name or the first line of a longer one: it has no legal
    form and the line printed under it, in its column, ends in one ("NAM SAN SEOUL KOREAN BBQ" over
    "KOREAN DINE SDN BHD (1077469-V)"; "Musterhafter" over "Versicherungsverein Musterstadt a.G.").
    An invoice's seller is the registered name (EN 16931's BT-27; the trade name is BT-28)."""
    if _legal_form(name):
        return None
    x0, y0, x1, y1 = box
    height = y1 - y0
    for line in page.lines:
        top = line[0][1]
        if top <= y0 + height / 2 or top - y1 > 3 * height + 5:
            continue
        under = " ".join(w[4] for w in line if w[2] >= x0 - NEAR and w[0] <= x1 + NEAR)
        named = not re.search(r"\d", _REGISTRATION.sub("", under))  # "3RD FLR, ... MALURI SC" is an address
        return f"{name!r} is printed over the registered name {under!r}" if named and _legal_form(under) else None
    return None


_REGISTRATION = re.compile(r"\([^)]*\)?\s*$")  # a company's registration number after its name: "(1077469-V)"


@cache
def _legal_forms() -> frozenset[tuple[str, ...]]:
    """Legal forms of companies by country (cleanco's terms: "sdn bhd", "gmbh", "a.g.", "b.v."...)."""
    return frozenset(tuple(term.split()) for term in normalize_terms(get_unique_terms()) if term.strip())


def _legal_form(text: str) -> bool:
    """Whether a name ends in a legal form (a registration number in parentheses after it aside)."""
    text = _REGISTRATION.sub("", text)
    words = [w for w in re.split(r"[\s,]+", re.sub(r"[.\-]", "", fold_words(text))) if w]
    return any(tuple(words[len(words) - n:]) in _legal_forms() for n in range(1, 5) if len(words) > n)


def _dated(text: str) -> bool:
    """A party's value that is only a date and a time ("20 Mar 2018 17:55" as a shop's address: the
    receipt's printed time read into the block above it)."""
    if not re.search(r"\d", text):
        return False
    words = {w.casefold() for w in re.findall(r"[^\W\d_]+", text)} - {"am", "pm"}
    return words <= month_words() and normalize_date(text) is not None  # it reads past a time of day itself


def _name(party: dict[str, Any]) -> str:
    name = party.get("name")
    return name if isinstance(name, str) else ""


def _role(name: str, page: PageIndex, labels: dict[str, tuple[str, ...]]) -> str | None:
    """'buyer' or 'seller' where one of ``labels`` (by role) next to the name's block says so, or else where the name is
    in an e-mail or web domain in the page's footer (the seller's own contact line); None when
    nothing (or both) is said."""
    if not name.strip():
        return None
    found = locate(name, "text", page, 1)
    roles = set()
    if found["bbox"] is not None:
        x0, y0, _, _ = found["bbox"]
        for role, words in labels.items():
            if any(_label_near(page, label, x0, y0) for label in words):
                roles.add(role)
    if not roles and _in_footer_domain(name, page):
        roles.add("seller")
    return roles.pop() if len(roles) == 1 else None


def _label_near(page: PageIndex, label: str, x0: float, y0: float) -> bool:
    """A label line just above the name (same column) or just before it on its line."""
    words = label.split()
    for i in range(len(page.words) - len(words) + 1):
        run = page.words[i:i + len(words)]
        if [fold_words(re.sub(r"[:.]+$", "", w[4])) for w in run] != words:
            continue
        lx0, ly0, lx1, _ = run[0][0], run[0][1], run[-1][2], run[0][3]
        above = 0 < y0 - ly0 <= NEAR and abs(lx0 - x0) <= NEAR
        before = abs(ly0 - y0) <= 4 and 0 <= x0 - lx1 <= NEAR / 2  # "Bill to: ACME", not another column
        if above or before:
            return True
    return False


FOOTER = 0.7  # the lower part of the page (by its lowest word) where a seller prints its contact line


def _in_footer_domain(name: str, page: PageIndex) -> bool:
    """The name's first distinctive word in an e-mail or web domain printed in the page's footer
    (info@cronus.com): a buyer's address block may carry the buyer's e-mail, a footer does not."""
    distinctive = [t for t in tokens(name) if len(t) >= 4 and not t.isdigit()][:1]
    bottom = max((w[3] for w in page.words), default=0.0)
    domains = [m.group(1).casefold() for w in page.words if w[1] >= FOOTER * bottom
               for m in [re.search(r"(?:@|www\.|https?://)([\w.-]+\.[a-z]{2,})", w[4], re.IGNORECASE)] if m]
    return any(token in domain for token in distinctive for domain in domains)
