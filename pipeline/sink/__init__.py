"""Stage 7, sink: typed Parquet tables, the commit protocol's state, reading the output back."""
