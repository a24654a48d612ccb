"""Screening a page before a model reads it: what kind of page it is, and what on it speaks to the machine."""
