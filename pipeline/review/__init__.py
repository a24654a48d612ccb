"""People settle the documents the machine flagged; what they decide is kept as data (the ``corrections`` table)."""
