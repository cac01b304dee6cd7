"""Numbers in words for the console and the report: one form, whichever prints them."""

from __future__ import annotations

import math
import numbers


def number(value, digits: int = 3) -> str:
    """`digits` significant digits, as a reader writes them: 0.000123, 1.23, 167,600; in
    scientific notation only outside 0.0001 to a billion (1.2e-5, 3.4e9), so that no
    figure, however small or large, runs longer than a dozen characters."""
    if value is None or isinstance(value, bool) or not isinstance(value, numbers.Real):
        return "n/a" if value is None else str(value)
    if not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    exponent = int(f"{float(value):.{digits - 1}e}".split("e")[1])  # after rounding: 9.996 -> 1
    if exponent < -4 or exponent >= 9:
        mantissa, _ = f"{float(value):.{digits - 1}e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
        return f"{mantissa}e{exponent}"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    return f"{float(value):,.{max(0, digits - 1 - exponent)}f}"


def joules(value) -> str:
    """"75.34 J", "19,540 J", "0.00097 J": four significant digits (a 1 mJ run read "0 J")."""
    return f"{number(value, 4)} J"


def some(values: list, shown: int = 8) -> str:
    """"000, 001 and 5 more": the first `shown` values, and how many more."""
    more = f" and {len(values) - shown} more" if len(values) > shown else ""
    return ", ".join(map(str, values[:shown])) + more



def counted(n: int, what: str) -> str:
    """"1 run", "3 runs": a count and its noun, in the plural where n is not 1."""
    return f"{n} {what}{'' if n == 1 else 's'}"
