"""Stage 4, consensus: normalising values, comparing them by schema type, voting the samples of a page."""
