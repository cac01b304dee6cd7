"""The report's building blocks: escaped text, numbers with units, tables, figures that
keep their heading, and the byte-identical PDF writer."""

from __future__ import annotations

import functools
import importlib.util
import io
import itertools
import math
import numbers
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import (
    CondPageBreak,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from greenscreen.fileio import atomic_write_bytes

from ..wording import number  # noqa: F401  (the report's numbers: re-exported)

STYLES = getSampleStyleSheet()
WIDTH = A4[0] - 4 * cm  # the text width between the 2 cm margins


def para(text, style: str = "BodyText", markup: str = "") -> Paragraph:
    """A paragraph of user-derived text, escaped; `markup` wraps it (e.g. "b" for bold)."""
    font = STYLES[style].fontName
    body = escaped(text, bold="Bold" in font or markup == "b",
                   italic="Oblique" in font or "Italic" in font or markup == "i")
    return Paragraph(f"<{markup}>{body}</{markup}>" if markup else body, STYLES[style])


def escaped(text, bold: bool = False, italic: bool = False) -> str:
    """`text` as paragraph markup: escaped, and each run of characters that reportlab's
    standard fonts lack set in DejaVu Sans. Those fonts hold Windows-1252 only: a path,
    class or value in Polish, Czech, Greek or Cyrillic printed as black boxes. DejaVu
    (shipped with matplotlib, a dependency, whose figures use it) holds them and is
    embedded as a subset. A character DejaVu lacks too (CJK) is written as its code,
    `\\u65e5`, not a blank box: two values of such characters stay told apart. Windows-1252
    text keeps Helvetica, so its layout is unchanged (a word of both mixes the two fonts).
    `bold`, `italic`: the weight and slant around the text (a <font> tag sets its own
    face, whatever <b> or the style says)."""
    body = escape(str(text))
    if body.isascii() or (faces := _fallback_faces()) is None:
        return body
    face = faces[(bold, italic)]
    body = "".join(c if not _beyond_standard_fonts(c) or _has_glyph(face, c)
                   else f"\\u{ord(c):04x}" for c in body)
    return "".join(f'<font face="{face}">{run}</font>' if lacking else run
                   for lacking, run in ((k, "".join(g)) for k, g in
                                        itertools.groupby(body, _beyond_standard_fonts)))


def _has_glyph(face: str, char: str) -> bool:
    from reportlab.pdfbase import pdfmetrics

    return ord(char) in pdfmetrics.getFont(face).face.charToGlyph


def _beyond_standard_fonts(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return True
    return False


@functools.lru_cache(maxsize=1)
def _fallback_faces() -> dict[tuple[bool, bool], str] | None:
    """Registers DejaVu Sans (its bold and oblique for <b> and <i>) with reportlab, once;
    returns its faces by (bold, italic); None where matplotlib's copy cannot be found or
    read (the boxes stay)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf"
    family = "DejaVuSans"
    faces = {"normal": family, "bold": f"{family}-Bold", "italic": f"{family}-Oblique",
             "boldItalic": f"{family}-BoldOblique"}
    try:
        for name in faces.values():
            pdfmetrics.registerFont(TTFont(name, str(folder / f"{name}.ttf")))
    except (OSError, TTFError):
        return None
    pdfmetrics.registerFontFamily(family, **faces)
    return {(False, False): faces["normal"], (True, False): faces["bold"],
            (False, True): faces["italic"], (True, True): faces["boldItalic"]}


def p_value(p) -> str:
    """A p-value with its two significant digits (0.034, 8.2e-159): the tables' form, where
    the exact value matters. A p that underflowed to 0 is below what a float holds."""
    if p is None or not isinstance(p, numbers.Real) or not math.isfinite(p):
        return "n/a"
    return "< 1e-300" if p <= 0 else number(p, 2)


def p_text(p) -> str:
    """A p-value as a sentence writes it: "p < 0.001", "p = 0.034"."""
    if p is None or not isinstance(p, numbers.Real) or not math.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {number(p, 2)}"


def setting(value) -> str:
    """A parameter's value as a config writes it (0.001, 64, Adam), not as a measured
    figure with three significant digits (0.00100)."""
    if isinstance(value, float) and math.isfinite(value):
        mantissa, _, exponent = f"{value:.6g}".partition("e")
        return mantissa + (f"e{int(exponent)}" if exponent else "")
    return "n/a" if value is None else str(value)


def cell(value) -> str:
    return number(value) if isinstance(value, numbers.Real) else ("n/a" if value is None
                                                                  else str(value))


class EnergyUnit:
    """One unit for every energy figure of a report: kWh, or Wh or J for small sweeps."""

    def __init__(self, largest_j: float) -> None:
        largest_j = largest_j if math.isfinite(largest_j) else 0.0
        self.name, self.joules = next((name, j) for name, j in (
            ("kWh", 3.6e6), ("Wh", 3600.0), ("J", 1.0)) if largest_j >= j or j == 1.0)

    def __call__(self, joules) -> float:
        return float("nan") if joules is None else float(joules) / self.joules

    def text(self, joules) -> str:
        return f"{number(self(joules))} {self.name}"


def table(rows: list[list], widths=None, size: int = 8, header: bool = True) -> Table:
    """A table (its first row the header, unless `header` is False); every cell escaped,
    numbers formatted. Column widths come from the page, never from the cells' text:
    `widths` in points, or shares of the text width (summing to at most 1), or None for
    equal columns; any that would overrun the page are scaled to fit it."""
    style = STYLES["BodyText"].clone("cell", fontSize=size, leading=size + 2)
    cells = [[Paragraph(escaped(cell(c)), style) for c in row] for row in rows]
    t = Table(cells, colWidths=column_widths(widths, max(len(r) for r in rows)),
              repeatRows=1 if header else 0)
    shade = [("BACKGROUND", (0, 0), (-1 if header else 0, 0 if header else -1),
              colors.HexColor("#dfe8df"))]
    t.setStyle(TableStyle(shade + [("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                           ("VALIGN", (0, 0), (-1, -1), "TOP"),
                           ("TOPPADDING", (0, 0), (-1, -1), 1),
                           ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
    return t


def column_widths(widths, columns: int) -> list[float]:
    """Widths in points that fill at most the text width. reportlab's automatic widths
    follow the longest cell, so one long figure squeezed the other columns below zero."""
    if widths is None:
        widths = [1 / columns] * columns
    if sum(widths) <= 1.0 + 1e-9:  # shares of the page
        widths = [w * WIDTH for w in widths]
    total = sum(widths)
    return [w * WIDTH / total for w in widths] if total > WIDTH else list(widths)


def figure(fig, width: float = WIDTH) -> Image:
    """A matplotlib figure as a PNG without metadata, so equal inputs give equal bytes."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)
    buf.seek(0)
    from PIL import Image as PILImage

    w, h = PILImage.open(buf).size
    buf.seek(0)
    return Image(buf, width=width, height=width * h / w)


KEEP_ROWS = 30  # a table this short moves whole to the next page rather than split


def section(title: str, *content, level: str = "Heading2") -> list:
    """A heading that never ends a page alone: a figure, or a table of up to `KEEP_ROWS`
    rows, moves with it to the next page (no page holding a short table's last rows
    alone); a longer table starts below it and splits across pages with its header row
    repeated."""
    first, rest = (content[0], list(content[1:])) if content else (Spacer(1, 0), [])
    rows = first._nrows if isinstance(first, Table) else 0  # noqa: SLF001 (no getter)
    if rows > KEEP_ROWS:
        return [CondPageBreak(4 * cm), para(title, level), first, *rest]
    return [CondPageBreak(3 * cm), KeepTogether([para(title, level), first]), *rest]


def write(story: list, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, invariant=1, title="greenscreen sweep report",
                            author="greenscreen", creator="greenscreen", leftMargin=2 * cm,
                            rightMargin=2 * cm, topMargin=1.5 * cm, bottomMargin=1.5 * cm)
    doc.build(story)
    atomic_write_bytes(out, buf.getvalue())
    return out
