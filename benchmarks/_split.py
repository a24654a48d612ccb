"""The dev set split once, by family: a half to study and a half only to score.

One reference invoice comes in several profiles (MINIMUM, BASIC, EN16931, EXTENDED; ZUGFeRD 1 and
2), and one vendor's generator makes many ("MustangGnuaccountingBeispielRE-2014..."): files of one
family must fall in one half, or a rule tuned on one file is scored on its twin.  The family is
the file's name without its source path, profile, version and numbers; its half is fixed by a
hash of that name, so the split never moves when files are added.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

# tokens that name a profile, a version, a number or a variant of the same invoice, not the invoice
VARIANT = re.compile(r"zugferd|factur|x|xrechnung|xml|rechnung|minimum|basic|wl|basicwl|comfort|en16931|extended|"
                     r"\d+p\d+|\d+|embedded|\d*new|withbom|duedate|negativepaymentdue|fx|pdf")


def family(path: Path) -> str:
    """``..._zugferd_2p1_EN16931_Einfach_DueDate.pdf`` -> ``einfach``; a numbered dataset's file
    (``sroie_test_017``: a different shop each) is its own family."""
    name = path.stem.split("__")[-1].casefold()
    if re.fullmatch(r"[a-z]+(?:_[a-z]+)*_\d+", name):
        return name
    tokens = [t for t in re.split(r"[^a-z0-9]+", name) if t and not VARIANT.fullmatch(t)]
    return "_".join(tokens) or name


def half(path: Path) -> str:
    """'study' or 'score'."""
    return "study" if hashlib.sha256(family(path).encode()).digest()[0] % 2 == 0 else "score"
