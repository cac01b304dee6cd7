"""The sweep meter's recorded sessions (sweep_energy.json), as the sweep's total reads
them: what each measured, the GPUs together (`pieces`: the union of the runs' windows) and
each GPU over the windows of the runs on it (`gpu_pieces`), and how much of a run's
attempt they cover (`covered`). `sweep_total` adds up the figures; `ledger` writes the
sessions, with `union` and `gpu_only`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from . import provenance, runfolder

GPU_BASES = ("measured:nvidia-smi", "measured:nvml")


def gpu_only(source: str) -> bool:
    """Whether a meter's provenance names GPU sources only (no RAPL, no estimate)."""
    return bool(source) and all(base.startswith(GPU_BASES)
                                for base, _ in provenance.parts(source))


def union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping or touching intervals merged, in time order: what the ledger's meter
    measures of the runs' windows, and what a session records (`pieces`)."""
    merged: list[list[float]] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


@dataclass(frozen=True)
class Pieces:
    """Spans a meter measured, in time order and disjoint."""

    spans: tuple  # ((a, b), ...)

    @classmethod
    def of(cls, given, whole: tuple) -> "Pieces":
        try:
            measured = tuple((float(a), float(b)) for a, b in given) if given is not None \
                else whole
        except (TypeError, ValueError):  # not pairs of numbers: the span, as before pieces
            measured = whole
        # In time order and disjoint, as the ledger writes them (`inside` relies on it),
        # whatever an edited or merged file holds: no second counted twice.
        return cls(tuple(union(list(measured))))

    @cached_property
    def ends(self) -> list[float]:
        return [end for _, end in self.spans]

    def inside(self, a: float, b: float) -> float:
        """Seconds of [a, b] inside the spans."""
        first = bisect.bisect_right(self.ends, a)
        seconds = 0.0
        for start, end in self.spans[first:]:
            if start >= b:
                break
            seconds += max(0.0, min(b, end) - max(a, start))
        return seconds

    def holds(self, t: float) -> bool:
        return any(start <= t <= end for start, end in self.spans)


@dataclass(frozen=True)
class Session:
    pieces: Pieces  # what its meter measured of the GPUs together
    uuids: frozenset  # the GPUs it measured; empty where not recorded
    # Each GPU's own pieces (the windows of the runs on it), where the session records
    # them; an older session measured every GPU over `pieces`.
    by_gpu: tuple = ()  # ((uuid, Pieces), ...)

    @classmethod
    def of(cls, session: dict) -> "Session":
        whole = ((float(session["t_start"]), float(session["t_end"])),)
        own = session.get("gpu_pieces")
        by_gpu = tuple(sorted((str(u), Pieces.of(p, ())) for u, p in own.items())) \
            if isinstance(own, dict) else ()
        return cls(Pieces.of(session.get("pieces"), whole),
                   frozenset(session.get("uuids") or ()), by_gpu)

    def covering(self, uuids: frozenset) -> list[Pieces]:
        """The pieces that measured an attempt on `uuids`: each of its GPUs' own, where
        recorded; else the session's (its every GPU measured over them)."""
        own = dict(self.by_gpu)
        if own and uuids:
            return [own.get(u, Pieces(())) for u in sorted(uuids)]
        return [self.pieces]

    def inside(self, a: float, b: float, uuids: frozenset = frozenset()) -> float:
        """Seconds of [a, b] measured on all of `uuids` (the least of its GPUs')."""
        return min(p.inside(a, b) for p in self.covering(uuids))

    def holds(self, t: float, uuids: frozenset = frozenset()) -> bool:
        return all(p.holds(t) for p in self.covering(uuids))


def sessions_of(sweep_dir: Path) -> list[dict]:
    """The sessions of sweep_energy.json the total uses (GPU sources only); none where
    the file is absent or unreadable."""
    from .ledger import FILE

    try:
        data = runfolder.read_json(Path(sweep_dir) / FILE) or {}
    except runfolder.Unreadable:
        return []
    return [s for s in data.get("sessions") or []
            if isinstance(s, dict) and gpu_only(str(s.get("source") or ""))
            and all(isinstance(s.get(k), (int, float)) and math.isfinite(s[k])
                    for k in ("t_start", "t_end", "energy_j"))]


def covered(window: tuple[float, float], uuids: frozenset, books: list[Session]) -> float:
    """The fraction of an attempt's window inside recorded sessions on its GPUs."""
    a, b = window
    if not (math.isfinite(a) and math.isfinite(b)):
        return 0.0
    mine = [s for s in books if not (s.uuids and uuids) or uuids <= s.uuids]
    if b <= a:
        return 1.0 if any(s.holds(a, uuids) for s in mine) else 0.0
    inside = sum(s.inside(a, b, uuids) for s in mine)
    return min(1.0, inside / (b - a))
