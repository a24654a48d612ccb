"""Evaluation: field-level precision, recall and F1 against ground truth, compared by schema type."""
