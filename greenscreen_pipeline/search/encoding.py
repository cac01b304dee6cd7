"""The sweep's space as Optuna sees it, and back.

config.yaml's space is a list of values per dimension (space.py: built-in dimensions
and your own, scalars all). Optuna is given only the dimensions with two or more
distinct values; the others are the same in every run. Each is encoded by position:

    numbers (three or more)  IntDistribution over their positions in ascending order, so
                             the samplers see that 0.001 < 0.01 < 0.1 (a list of learning
                             rates or widths is usually geometric, so positions are
                             about the log of the value);
    anything else            CategoricalDistribution over positions 0..n-1, so that a
                             list mixing True, 1 and "1" is never conflated by ==.

A configuration is always one of the space's values per dimension, so a proposal cannot
leave the space.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence


@dataclass(frozen=True)
class Dimension:
    """A dimension Optuna samples.

    Attributes:
        name: The dimension's name in config.yaml.
        values: Its distinct values, ascending when `ordinal`, else as config.yaml lists them.
        ordinal: Whether the values are numbers sampled by their order.
    """

    name: str
    values: tuple
    ordinal: bool

    def position(self, value: Any) -> int | None:
        """Where `value` is among `values` (type and value alike); None if it is not."""
        return next((i for i, v in enumerate(self.values) if _same(v, value)), None)


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
        space: Dimension -> its list of values (`SweepConfig.space`).
    """
    out = []
    for name, values in space.items():
        distinct = _distinct(values)
        if len(distinct) < 2:
            continue
        ordinal = len(distinct) >= 3 and all(_is_number(v) for v in distinct)
        out.append(Dimension(name, tuple(sorted(distinct)) if ordinal else distinct, ordinal))
    return out


def distributions(dims: Sequence[Dimension]) -> dict:
    """Optuna's distribution of each dimension, by position."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    return {d.name: IntDistribution(0, len(d.values) - 1) if d.ordinal
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
    chosen = {d.name: d.values[int(params[d.name])] for d in dims}
    return {name: chosen.get(name, values[0]) for name, values in space.items()}


def key(config: Mapping[str, Any], dims: Sequence[Dimension]) -> tuple:
    """What tells two configurations apart: the position of each varying value (the
    value's repr where it is not in the space, so such a run repeats no proposal)."""
    out: list = []
    for d in dims:
        position = d.position(config.get(d.name))
        out.append(repr(config.get(d.name)) if position is None else position)
    return tuple(out)


def size(dims: Sequence[Dimension]) -> int:
    """How many distinct configurations the space holds."""
    return math.prod(len(d.values) for d in dims)


def every_key(dims: Sequence[Dimension]) -> Iterator[tuple]:
    """Every configuration's key, in a fixed order (for a small space only)."""
    return itertools.product(*(range(len(d.values)) for d in dims))


def from_key(k: Sequence[int], dims: Sequence[Dimension], space: Mapping[str, Sequence]) -> dict:
    """The configuration of a key of positions (`every_key`)."""
    return from_params({d.name: p for d, p in zip(dims, k)}, dims, space)
