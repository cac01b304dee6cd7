"""One place, one message template, for checking user-given arguments.

Every public class validates its arguments through these helpers so a user
always gets the same shape of error: what was given, where, and what is allowed.
"""

from __future__ import annotations

import difflib
import math
import numbers
from typing import Any, Iterable


def invalid(name: str, value: Any, allowed: str,
            error: type[ValueError] = ValueError) -> ValueError:
    """Builds the one error message greenscreen uses for a bad value, as `error`.

    Args:
        name: What was given a value: an argument, a variable, a flag.
        value: The value given (shown with repr).
        allowed: What is allowed instead, in words.
        error: The ValueError subclass to build (e.g. a module's own error type).

    Example:

    ```python
    raise invalid("interval", -1, "a number in (0, inf)")
    # ValueError: interval=-1 is not valid; allowed: a number in (0, inf).
    ```
    """
    return error(f"{name}={value!r} is not valid; allowed: {allowed}.")


def did_you_mean(value: Any, choices: Iterable[Any], cutoff: float = 0.6) -> str:
    """" (did you mean 'rapl'?)" where one of `choices` is close to a misspelt `value`
    (difflib's ratio at least `cutoff`), else "": for the end of an `allowed` text.

    Example:

    ```python
    raise invalid("source", "rpal", "'nvml', 'rapl'" + did_you_mean("rpal", ["nvml", "rapl"]))
    # ValueError: source='rpal' is not valid; allowed: 'nvml', 'rapl' (did you mean 'rapl'?).
    ```
    """
    near = nearest(value, choices, cutoff) if isinstance(value, str) else None
    return f" (did you mean {near!r}?)" if near else ""


def nearest(name: str, names: Iterable[Any], cutoff: float = 0.6) -> str | None:
    """The one of `names` (their strings) closest to a misspelt `name`, difflib's ratio at
    least `cutoff`; None where none is close. The one rule behind every "did you mean"."""
    close = difflib.get_close_matches(str(name), [n for n in names if isinstance(n, str)],
                                      n=1, cutoff=cutoff)
    return close[0] if close else None


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Checks `value` is one of `choices`; a misspelt string names the nearest one.

    Example:

    ```python
    check_choice("attribution", "proces", ("process", "device"))
    # ValueError: attribution='proces' is not valid; allowed: one of 'process', 'device'
    # (did you mean 'process'?).
    ```
    """
    choices = list(choices)
    if value not in choices:
        raise invalid(name, value, "one of " + ", ".join(repr(c) for c in choices)
                      + did_you_mean(value, choices))
    return value


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> Any:
    """Checks a real number lies in an interval; `None` passes if allowed. NumPy's scalars
    are numbers too (`np.float32(0.3)`, `np.int64(50)`); a bool is not.

    To refuse infinity, bound the interval by it: `high=math.inf, high_open=True`."""
    return _check_interval(name, value, "a number", numbers.Real, low, high, low_open,
                           high_open, allow_none)


def check_integer(
    name: str,
    value: Any,
    *,
    low: int | None = None,
    high: int | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> Any:
    """Checks an integer lies in an interval, as `check_number` does a number: for what
    counts epochs, steps or samples. Python's and NumPy's integers (`np.int64(50)`) pass;
    a bool and every float (`1.5`, and `2.0` too) do not.

    Example:

    ```python
    check_integer("frequency", 2.5, low=1)
    # ValueError: frequency=2.5 is not valid; allowed: an integer in [1, inf).
    ```
    """
    return _check_interval(name, value, "an integer", numbers.Integral, low, high, low_open,
                           high_open, allow_none)


def _check_interval(name: str, value: Any, kind: str, types: type, low, high,
                    low_open: bool, high_open: bool, allow_none: bool) -> Any:
    """The one rule behind `check_number` and `check_integer`: a `kind` of value (an
    instance of `types`, not a bool, not NaN) in an interval, or None if allowed."""
    if value is None and allow_none:
        return value
    lo = "-inf" if low is None else repr(low)
    hi = "inf" if high is None else repr(high)
    interval = ("(" if low_open or low is None else "[") + f"{lo}, {hi}" + (
        ")" if high_open or high is None else "]"
    )
    allowed = f"{kind} in {interval}" + (" or None" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, types) or (
            not isinstance(value, numbers.Integral) and math.isnan(value)):
        raise invalid(name, value, allowed)
    if low is not None and (value < low or (low_open and value == low)):
        raise invalid(name, value, allowed)
    if high is not None and (value > high or (high_open and value == high)):
        raise invalid(name, value, allowed)
    return value
