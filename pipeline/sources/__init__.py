"""Stage 1, sources: finding the input files (folders, globs) and hashing them."""
