"""Stage 5a, rules: the schema's business rules (x-rules), checked on pages and documents."""
