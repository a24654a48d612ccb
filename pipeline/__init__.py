"""extract: batch document extraction with a local VLM, typed Parquet out."""

__version__ = "0.1.0"
