"""How close two amounts must be to be one: the tolerances, each written once.

Printed amounts have two decimals, and floats carry a hair of error: two amounts within half a
cent are one printed amount (``HALF_CENT``).  A value compared with truth or another sample may
be rounded differently by a cent (``SAME_AMOUNT``).  A business rule allows two cents by default
(``RULE_TOLERANCE``, an ``x-rules`` rule's ``tolerance``), and a sum of many rounded rows half a
cent per row (``rows_slack``).
"""

from __future__ import annotations

HALF_CENT = 0.005
SAME_AMOUNT = 0.01
RULE_TOLERANCE = 0.02


def rows_slack(rows: int, tolerance: float = RULE_TOLERANCE) -> float:
    """What a sum of ``rows`` rounded amounts may be off by: the tolerance, or half a cent a row."""
    return max(tolerance, HALF_CENT * rows)
