"""Grounding: where on the page each extracted value was printed.

A small model can return a value that is on no page (a hallucination) or read the right
label's neighbour.  Every scalar the model returns is looked up, after normalisation, among the
page's words (PyMuPDF words with their boxes, or OCR words), deterministically: the model never
produces coordinates.  The result, ``field_sources`` (field path -> page, bbox, matched text,
match kind), is provenance for a reviewer, and a value found nowhere is a dispute.
"""
