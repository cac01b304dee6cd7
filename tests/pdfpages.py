"""Render a PDF's pages to images (pypdfium2) and measure how much of each page is used."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def render(pdf: Path, scale: float = 1.0) -> list:
    """Every page as a PIL image (72 dpi at scale 1)."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    try:
        return [doc[i].render(scale=scale).to_pil() for i in range(len(doc))]
    finally:
        doc.close()


def used_height(image) -> float:
    """The share of the page's height between its first and last inked row (0: blank)."""
    gray = np.asarray(image.convert("L"))
    inked = np.flatnonzero((gray < 200).any(axis=1))
    return 0.0 if inked.size == 0 else (inked[-1] - inked[0] + 1) / gray.shape[0]


def inked_share(image) -> float:
    """The share of the page's 1/40-height bands that hold any ink."""
    gray = np.asarray(image.convert("L"))
    bands = np.array_split((gray < 200).any(axis=1), 40)
    return float(np.mean([band.any() for band in bands]))
