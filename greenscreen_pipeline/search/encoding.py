"""The sweep's space as Optuna sees it, and back.

config.yaml's space is a list of values or a range per dimension (space.py: built-in
dimensions and your own, scalars all; ranges.py). Optuna is given only the dimensions
with two or more distinct values; the others are the same in every run. A list is
encoded by position:

    numbers (three or more)  IntDistribution over their positions in ascending order, so
                             the samplers see that 0.001 < 0.01 < 0.1 (a list of learning
                             rates or widths is usually geometric, so positions are
                             about the log of the value);
    anything else            CategoricalDistribution over positions 0..n-1, so that a
                             list mixing True, 1 and "1" is never conflated by ==.

A range is given as itself: FloatDistribution(min, max, log=, step=) or, for integers,
IntDistribution(min, max, log=, step=), and its parameter is the value.

A configuration is always one of the space's values per dimension, so a proposal cannot
leave the space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..ranges import Range


@dataclass(frozen=True)
class Dimension:
    """A dimension Optuna samples.

    Attributes:
        name: The dimension's name in config.yaml.
        values: Its distinct values, ascending when `ordinal`, else as config.yaml lists them.
        ordinal: Whether the values are numbers sampled by their order.
        range: A range's Range (`values` is then empty): its parameter is the value.
    """

    name: str
    values: tuple
    ordinal: bool
    range: Range | None = field(default=None, compare=False)

    def position(self, value: Any) -> Any:
        """Where `value` is among `values` (type and value alike), or a range's value
        itself; None if it is not in the space."""
        if self.range is not None:
            return value if self.range.contains(value) else None
        return next((i for i, v in enumerate(self.values) if _same(v, value)), None)

    @property
    def count(self) -> int | None:
        """How many values it holds; None for a float range without a step."""
        return self.range.count if self.range is not None else len(self.values)

    def value(self, param: Any) -> Any:
        """The value of Optuna's parameter (a position, or a range's value)."""
        if self.range is None:
            return self.values[int(param)]
        if self.range.integer:
            return int(param)
        if self.range.step is not None:  # on the grid, without float noise
            return self.range.at(round((param - self.range.low) / self.range.step))
        return float(param)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _distinct(values: Sequence) -> tuple:
    out: list = []
    for value in values:
        if not any(_same(value, seen) for seen in out):
            out.append(value)
    return tuple(out)


def dimensions(space: Mapping[str, Sequence]) -> list[Dimension]:
    """The dimensions of `space` that vary, in the space's order.

    Args:
        space: Dimension -> its list of values or its range (`SweepConfig.space`, or
            sweep.json's record of it).
    """
    out = []
    for name, values in space.items():
        if isinstance(values, Mapping):
            spec = Range.of(values)
            if spec.low != spec.high and spec.count != 1:
                out.append(Dimension(name, (), False, spec))
            continue
        distinct = _distinct(values)
        if len(distinct) < 2:
            continue
        ordinal = len(distinct) >= 3 and all(_is_number(v) for v in distinct)
        out.append(Dimension(name, tuple(sorted(distinct)) if ordinal else distinct, ordinal))
    return out


def distributions(dims: Sequence[Dimension]) -> dict:
    """Optuna's distribution of each dimension: by position, a range's own."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    return {d.name: d.range.distribution() if d.range is not None
            else IntDistribution(0, len(d.values) - 1) if d.ordinal
            else CategoricalDistribution(tuple(range(len(d.values)))) for d in dims}


def to_params(config: Mapping[str, Any], dims: Sequence[Dimension]) -> dict | None:
    """A configuration as Optuna parameters; None if a value is not in the space (a
    config.yaml edited since that run was recorded)."""
    params = {}
    for d in dims:
        position = d.position(config.get(d.name))
        if position is None:
            return None
        params[d.name] = position
    return params


def from_params(params: Mapping[str, int], dims: Sequence[Dimension],
                space: Mapping[str, Sequence]) -> dict:
    """The configuration of Optuna parameters: every dimension of `space`, in its order
    (a dimension that does not vary takes its one value)."""
    chosen = {d.name: d.value(params[d.name]) for d in dims}
    return {name: chosen[name] if name in chosen else fixed(values)
            for name, values in space.items()}


def fixed(spec: Any) -> Any:
    """The one value of a dimension that does not vary: a list's first, a range's min."""
    return Range.of(spec).low if isinstance(spec, Mapping) else spec[0]


def key(config: Mapping[str, Any], dims: Sequence[Dimension]) -> tuple:
    """What tells two configurations apart: the position of each varying value, a range's
    value itself (the value's repr where it is not in the space, so such a run repeats no
    proposal)."""
    out: list = []
    for d in dims:
        position = d.position(config.get(d.name))
        out.append(repr(config.get(d.name)) if position is None else position)
    return tuple(out)


def size(dims: Sequence[Dimension]) -> int | None:
    """How many distinct configurations the space holds; None when a float range without
    a step makes it endless."""
    counts = [d.count for d in dims]
    return None if None in counts else math.prod(counts)


def from_key(k: Sequence[Any], dims: Sequence[Dimension], space: Mapping[str, Any]) -> dict:
    """The configuration of a key (`key`: positions, and the values of ranges)."""
    return from_params({d.name: p for d, p in zip(dims, k)}, dims, space)


def key_at(index: int, dims: Sequence[Dimension]) -> tuple:
    """The key of configuration `index` of a finite space, in mixed radix (the last
    dimension varies fastest)."""
    out = []
    for d in reversed(dims):
        index, k = divmod(index, d.count)
        out.append(k if d.range is None else d.range.at(k))
    return tuple(reversed(out))
