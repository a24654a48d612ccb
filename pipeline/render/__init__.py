"""Stage 2, render/text: a page as an image (PyMuPDF, Pillow) or as laid-out text (text layer, OCR)."""
