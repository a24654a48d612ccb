"""Stage 6, merge: page results into one document (merge rules from the schema; streaming assembly)."""
