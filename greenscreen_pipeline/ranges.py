"""Ranges in config.yaml's search space, and the order in which a random search visits it.

A dimension is a list, `{values: [...]}`, or a range:

    lr:      {min: 0.0001, max: 0.1, log: true}   floats, log-uniform
    dropout: {min: 0.0, max: 0.5}                 floats, uniform
    units:   {min: 64, max: 1024, log: true}      integers (min and max both integers)
    layers:  {min: 1, max: 5, step: 1}            min, min + step, ... up to max

A range is a *grid* when it holds a few values equally likely: integers without `log`,
or any range with a `step`. A grid is visited like a list. The others are *drawn*: a
float range without a step, and an integer range on a log scale (log-uniform over a
finite set cannot also visit each value once). A drawn value comes from a hash of
(seed, run, dimension), as lists did before; integers on a log scale follow Optuna's
rule, log-uniform over [min - 0.5, max + 0.5] and rounded.

Run i's configuration (`configuration`) is a pure function of (seed, i, space). The grid
is the product of the lists and the grid ranges, and a seeded permutation of it is
walked by run index: run 0 is the baseline (each list's first value, each range's
middle: the geometric middle on a log scale), runs 1..N-1 the other N-1 configurations,
so no configuration trains twice before every one has trained once. From run N on, each
further block of N runs visits every configuration once more in another permutation;
the training seed is seed + run, so such a repeat is a replicate with another seed.
The permutation is a Feistel network with cycle walking, computed per index and never
listed, so a grid of 10**12 configurations costs what one of ten does.
"""

from __future__ import annotations

import hashlib
import math
import sys
from typing import Any, Callable, Mapping

from greenscreen.validation import did_you_mean

KEYS = ("min", "max", "log", "step")
# Other tools' names for a range's keys (Optuna's low/high, W&B's and Hyperopt's q, W&B's
# distribution, KerasTuner's sampling): "did you mean" names ours, not the nearest spelling
# ("low" is nearest to "log").
ALIASES = {"low": "min", "high": "max", "lower": "min", "upper": "max", "minimum": "min",
           "maximum": "max", "q": "step", "distribution": "log", "sampling": "log",
           "scale": "log"}


def key_hint(key: Any, given: Mapping) -> str:
    """" (did you mean 'min'?)" for an unknown key of a range: another tool's name for one
    of ours, else the nearest of ours that `given` does not already have."""
    if isinstance(key, str) and key.lower() in ALIASES:
        return f" (did you mean {ALIASES[key.lower()]!r}?)"
    return did_you_mean(key, [k for k in KEYS if k not in given])


def looks_like(spec: Any) -> bool:
    """Whether a dimension's mapping was meant as a range: no `values`, and a key of a
    range or another tool's name for one."""
    return isinstance(spec, Mapping) and "values" not in spec and any(
        k in KEYS or (isinstance(k, str) and k.lower() in ALIASES) for k in spec)


class Range(dict):
    """A validated range, {"min", "max", "log", "step"}: a dict, so that sweep.json and
    manifest comparisons see it as config.yaml gave it. `step` is None for floats
    without one and 1 by default for integers."""

    @classmethod
    def of(cls, spec: Mapping) -> "Range":
        """A recorded range (sweep.json, already validated) as a Range."""
        return spec if isinstance(spec, Range) else cls(
            {"min": spec["min"], "max": spec["max"], "log": bool(spec.get("log")),
             "step": spec.get("step")})

    @property
    def low(self) -> float:
        return self["min"]

    @property
    def high(self) -> float:
        return self["max"]

    @property
    def log(self) -> bool:
        return bool(self["log"])

    @property
    def step(self) -> float | None:
        return self["step"]

    @property
    def integer(self) -> bool:
        return all(isinstance(self[k], int) and not isinstance(self[k], bool)
                   for k in ("min", "max"))

    @property
    def grid(self) -> bool:
        """Whether its values are a few, equally likely (visited like a list's)."""
        return not self.log and (self.integer or self.step is not None)

    @property
    def count(self) -> int | None:
        """How many distinct values it holds; None for a float range without a step."""
        if self.integer:
            return (self.high - self.low) // (self.step or 1) + 1
        if self.step is None:
            return None
        return int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1

    def at(self, k: int) -> float:
        """Its k-th value (a grid's, or an integer range's), ascending."""
        if self.integer:
            return self.low + k * (self.step or 1)
        return _tidy(self.low + k * self.step)

    @property
    def middle(self) -> float:
        """The baseline's value: the middle of the grid, or of the range (geometric on a
        log scale)."""
        if self.grid:
            return self.at(self.count // 2)
        mid = math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2
        return min(self.high, max(self.low, round(mid))) if self.integer else mid

    def draw(self, u: float) -> float:
        """The value at quantile `u` in [0, 1) of its distribution."""
        if self.grid:
            return self.at(min(self.count - 1, int(u * self.count)))
        lo, hi = self.low, self.high
        if self.integer:  # Optuna's rule for a log-scale integer: widen by half, round
            lo, hi = lo - 0.5, hi + 0.5
        value = (math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if self.log
                 else lo + u * (hi - lo))
        if self.integer:
            return min(self.high, max(self.low, int(round(value))))
        return min(self.high, max(self.low, value))

    def contains(self, value: Any) -> bool:
        """Whether `value` is one of its values (type, bounds and step alike)."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not self.low <= value <= self.high:
            return False
        if self.step is None:
            return True
        k = (value - self.low) / self.step
        return abs(k - round(k)) < 1e-6

    def distribution(self):
        """Optuna's distribution of this range."""
        from optuna.distributions import FloatDistribution, IntDistribution

        if self.integer:  # high on the grid: Optuna warns of, then drops, a ragged end
            high = self.high if self.log else self.at(self.count - 1)
            return IntDistribution(self.low, high, log=self.log, step=self.step or 1)
        high = self.at(self.count - 1) if self.step is not None else self.high
        return FloatDistribution(self.low, high, log=self.log, step=self.step)

    def describe(self) -> str:
        """The range in words: [0.0001, 0.1], log scale."""
        extra = ", log scale" if self.log else f", step {self.step}" if (
            self.step is not None and not (self.integer and self.step == 1)) else ""
        return f"[{self.low}, {self.high}]" + extra + (", integers" if self.integer else "")


def _tidy(value: float) -> float:
    """A grid value without the float noise of min + k * step (0.30000000000000004)."""
    return float(f"{value:.12g}")


class RangeError(ValueError):
    """A bad range: `key` (min, max, log, step or '' for the whole spec), what was given,
    and what is allowed."""

    def __init__(self, key: str, given: Any, allowed: str) -> None:
        super().__init__(f"{key}: got {given!r}; allowed: {allowed}")
        self.key, self.given, self.allowed = key, given, allowed


def _number(value: Any) -> bool:
    """A number, as a float holds it: an int beyond a float's range is not (OverflowError)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (
        not isinstance(value, int) or abs(value) <= sys.float_info.max)


def parse(spec: Mapping, kind: type | None = None) -> Range:
    """A range from config.yaml. `kind`: int or float for a built-in dimension, None for one
    of your own (integers when min and max are both integers). Bounds of a built-in
    dimension are checked by the caller. Raises RangeError naming the key."""
    for key in spec:
        if key not in KEYS:
            raise RangeError(str(key), "an unknown key", ", ".join(KEYS) + key_hint(key, spec))
    if "min" not in spec or "max" not in spec:
        raise RangeError("", dict(spec), "a range with both min and max, e.g. "
                                         "{min: 0.0001, max: 0.1, log: true}")
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(log, bool):
        raise RangeError("log", log, "true or false" + (
            " (unquoted)" if isinstance(log, str) and log.lower() in ("true", "false") else ""))
    integer = kind is int or (kind is None and all(
        isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("min", "max")))
    what = "an integer" if integer else "a number"
    for key in ("min", "max"):
        value = spec[key]
        if not _number(value) or (integer and not float(value).is_integer()):
            raise RangeError(key, value, what)
    low, high = (int(spec[k]) if integer else float(spec[k]) for k in ("min", "max"))
    if low > high:
        raise RangeError("min", spec["min"], f"{what} <= max ({spec['max']})")
    if log and low <= 0:
        raise RangeError("min", spec["min"], f"{what} > 0 with log: true")
    if not integer and math.isfinite(low) and math.isfinite(high) \
            and not math.isfinite(high - low):  # every draw was clamped to max
        raise RangeError("max", spec["max"], f"a number whose distance from min "
                                             f"({spec['min']}) is finite")
    if step is not None:
        if not _number(step) or step <= 0 or (integer and not float(step).is_integer()):
            raise RangeError("step", step, "a positive integer" + (
                ": min and max are both integers, so the range holds integers (write min: "
                f"{float(spec['min'])} for numbers between them)" if kind is None else "")
                if integer else "a number > 0")
        if log and not (integer and step == 1):
            raise RangeError("step", step, "no step with log: true (Optuna samples a log scale "
                                           "without steps)")
        step = int(step) if integer else float(step)
        if not integer and not (high - low) / step <= MAX_GRID:  # inf or a grid too fine
            raise RangeError("step", step, f"a step leaving at most {MAX_GRID:.0e} values "
                                           f"between min and max")
    return Range({"min": low, "max": high, "log": log,
                  "step": (step or 1) if integer else step})


# The most values a float range's step may leave: a finer grid is a mistake (a step of
# 1e-308), and its count would not fit an integer.
MAX_GRID = 1e9


# -- the visiting order -----------------------------------------------------------------------
Axis = tuple[str, int, Callable[[int], Any]]  # dimension, how many values, the k-th value


def _axes(space: Mapping[str, Any]) -> list[Axis]:
    """The grid's axes, in name order: every list, every grid range."""
    out = []
    for dim in sorted(space):
        spec = space[dim]
        if isinstance(spec, Mapping):
            spec = Range.of(spec)
            if spec.grid:
                out.append((dim, spec.count, spec.at))
        else:
            out.append((dim, len(spec), spec.__getitem__))
    return out


def size(space: Mapping[str, Any]) -> int | None:
    """How many distinct configurations the space visits in turn (lists with repeated
    values count each); None when a range drawn at random (a float range without a step,
    or any log range, an integer one too) makes it endless."""
    total = 1
    for spec in space.values():
        if isinstance(spec, Mapping):
            spec = Range.of(spec)
            if not spec.grid:
                return None
            total *= spec.count
        else:
            total *= len(spec)
    return total


def _hash(text: str, bits: int = 64) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> (64 - bits)


def unit(seed: int, index: int, dim: str) -> float:
    """Run `index`'s uniform draw in [0, 1) for `dim`: a hash of (seed, index, dim)."""
    return _hash(f"{seed}:{index}:{dim}") / 2 ** 64


def permute(k: int, n: int, key: str) -> int:
    """Where position k in range(n) goes under the seeded permutation named by `key`: a
    four-round Feistel network on the smallest even number of bits covering n, walked
    until it lands inside range(n) (under four steps on average)."""
    if n <= 1:
        return 0
    bits = max(2, (n - 1).bit_length())
    half = (bits + 1) // 2
    mask = (1 << half) - 1
    x = k
    while True:
        left, right = x >> half, x & mask
        for r in range(4):
            left, right = right, left ^ (_hash(f"{key}:{r}:{right}") & mask)
        x = (left << half) | right
        if x < n:
            return x


def visit(seed: int, index: int, n: int, baseline: int) -> int:
    """Run `index`'s configuration among the grid's n, as a position: the baseline first,
    then the others in a seeded order, then every one again per further n runs."""
    if index == 0 or n <= 1:
        return baseline if n > 1 else 0
    if index < n:
        k = permute(index - 1, n - 1, f"{seed}:grid:0")
        return k + (k >= baseline)
    cycle, k = divmod(index - n, n)
    return permute(k, n, f"{seed}:grid:{cycle + 1}")


def configuration(space: Mapping[str, Any], seed: int, index: int) -> dict:
    """Run `index`'s configuration of `space` (dimension -> a list, or a Range), in the
    space's order: a pure function of (seed, index, space)."""
    axes = _axes(space)
    n, baseline = 1, 0
    for dim, count, _ in axes:  # mixed radix, the first axis most significant
        spec = space[dim]
        middle = Range.of(spec).count // 2 if isinstance(spec, Mapping) else 0
        n, baseline = n * count, baseline * count + middle
    position = visit(seed, index, n, baseline)
    chosen = {}
    for dim, count, value_at in reversed(axes):
        position, k = divmod(position, count)
        chosen[dim] = value_at(k)
    out = {}
    for dim, spec in space.items():
        if dim in chosen:
            out[dim] = chosen[dim]
        else:  # a drawn range
            spec = Range.of(spec)
            out[dim] = spec.middle if index == 0 else spec.draw(unit(seed, index, dim))
    return out


def repeats(space: Mapping[str, Any], runs: int) -> str | None:
    """What happens when `runs` exceeds the space's configurations, in words; else None."""
    total = size(space)
    if total is None or runs <= total:
        return None
    return (f"settings.runs is {runs} but the space holds {total} configuration(s): runs "
            f"000-{total - 1:03d} train each once, and each further {total} runs train "
            "every one again, in another order and with another training seed (seed + run)")
