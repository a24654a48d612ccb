"""Whether a page image is blank: a separator sheet, the back of a scanned page.

Seen at about 50 dpi (a scan's speckle and JPEG noise average out, a line of text does not): a
page is blank when almost none of it differs from its paper colour.
"""

from __future__ import annotations

import io

INK_SHADE = 48  # 0-255: darker than the paper by this much is ink
MAX_INK = 0.002  # share of the page that may be ink on a blank page (specks, a punched hole's shadow)
LOOK_WIDTH = 400  # pixels across the page the image is looked at with


def blank_image(png: bytes) -> bool:
    """True when the image shows (next to) nothing but paper."""
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        gray = im.convert("L")
        if gray.width > LOOK_WIDTH:
            gray = gray.resize((LOOK_WIDTH, max(1, round(gray.height * LOOK_WIDTH / gray.width))))
        pixels = np.asarray(gray, dtype=np.int16)
    paper = int(np.median(pixels))
    ink = np.abs(pixels - paper) > INK_SHADE
    return float(ink.mean()) <= MAX_INK
