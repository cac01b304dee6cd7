"""How the report's figures write names and numbers on their axes: plain numbers on
linear and log axes (`plain_ticks`), a log axis's ticks by the decades in view, and long
names or values cut to fit (`cut`)."""

from __future__ import annotations

import numpy as np

from .layout import number


def cut(text, room: int = 24) -> str:
    """A name or value as a figure shows it: whole, or its first `room` characters and
    "…" (a 100-character value ran across the page and squeezed the boxplots)."""
    text = str(text)
    return text if len(text) <= room else text[:room - 1] + "…"


def plain_ticks(axis) -> None:
    """Tick labels as plain numbers (200, 0.05), not 2 × 10², also on log axes."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    if axis.get_scale() == "log":
        axis.set_major_locator(decades())
    axis.set_major_formatter(FuncFormatter(lambda v, _: number(v, 2)))
    axis.set_minor_formatter(NullFormatter())


def decades():
    """A log axis's ticks by the decades in view, decided when drawn: 1, 2 and 5 per
    decade up to three decades; one per decade (or every k-th) beyond; within one decade
    a few plain steps. 1-2-5 everywhere gave no tick over 12 decades, an overprinted strip
    over 8, and one ("100") over 74 to 110 J."""
    from matplotlib.ticker import LogLocator, MaxNLocator

    class Decades(LogLocator):
        def tick_values(self, vmin, vmax):
            low, high = sorted((vmin, vmax))
            span = np.log10(high / low) if low > 0 else np.inf
            if span < 1:
                return MaxNLocator(4).tick_values(low, high)
            self.set_params(subs=(1.0, 2.0, 5.0) if span <= 3 else (1.0,), numticks=8)
            return super().tick_values(vmin, vmax)

    return Decades(base=10)
