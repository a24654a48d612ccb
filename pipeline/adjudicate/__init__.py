"""API adjudication of the pages the local model is unsure about (disputed fields, broken rules)."""
