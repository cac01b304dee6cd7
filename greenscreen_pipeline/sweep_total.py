"""The sweep's total energy: the one rule behind the console's "total", analysis.json's
`sweep_energy`, the report's Totals and the energy budget's "spent".

A sweep has two kinds of figures. Its own meter (`ledger.DeviceLedger`,
sweep_energy.json) measures each GPU once, whole boards, over the union of the runs'
windows: one session per sweep invocation, recorded after each finished run, GPUs only.
Each run's own figures (summary.json, per attempt and per component) are its share of a
GPU it shared, its CPU packages and DRAM (RAPL, its share of the node's busy CPU time) or
the CPU-time estimate. The total is

  - the sweep's meter's GPU energy, over every recorded session;
  - plus, for each attempt a recorded session covers, the run's own figures of what that
    meter does not measure: its CPU and DRAM (measured or estimated, as recorded);
  - plus, for each attempt no recorded session covers, the run's own figures, every
    component: a sweep killed before its session was recorded, an invocation whose meter
    could not start (no GPU here: the runs estimated), a run trained on GPUs the session
    did not measure (elsewhere).

An attempt is covered for the seconds of its [t_start, t_end] inside the stretches the
session's meter measured (`pieces`: the union of the runs' windows as their summaries stood
when it recorded; a session recorded before pieces were, its [t_start, t_end]), on the
session's GPUs where both record them, and on each of its GPUs' own pieces where the
session records them (`gpu_pieces`: a GPU is metered over the windows of the runs on it,
not over another GPU's runs). The sessions are read in `sweep_sessions.py`. A run still
training when the sweep last recorded straddles its last piece: its own figures count in
proportion to its seconds outside, an apportioning by time. (Covering the session's whole
span instead dropped the seconds between a running run's last summary and the record, when
no later record came: a killed sweep, or another invocation's runs still training.) Energy
already spent is never dropped: what no session covers counts at the run's own figure. Each
part keeps its provenance, and `provenance` ("measured", "estimated", "measured +
estimated", COMPUTED and its mixes: `kind_of`) follows `provenance.estimated`, so a total
that is in part an estimate says so wherever it is shown; the original pipeline's figure
("computed:", one power reading per epoch times the epoch's duration) is never added into
"measured". A session recorded with another source than the GPUs' (a ledger that metered
RAPL's whole packages too, before it kept GPU sources only) is not used: its attempts count
at their own figures. The budget's "spent" is this total too (`budget.Spent`; budget.py
says why): the console prints the two one under the other, as one figure.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from greenscreen.provenance import is_measured

from . import kept, provenance, runfolder
from .records import Attempt
from .sweep_sessions import GPU_BASES, Session, covered, sessions_of

METER, BESIDE, OWN = "sweep-meter", "beside-meter", "not-covered"
# The joules of a component only a meter gives: the CPU-time estimate is the CPU's alone.
ONLY_MEASURED = ("gpu", "dram")
# The provenance in words of the seed format's figure (collect.SEED_SOURCE): the original
# pipeline logged one nvidia-smi power reading per epoch, and its energy is each reading
# times the epoch's duration, so a measured power held over a whole epoch, not a metered
# energy: never "measured". Here, the lowest module that words a figure's kind; analysis
# and the report import it.
COMPUTED = "computed from one power sample per epoch"


# A total of 0 J: before any run, and where the runs that ended have no figure (energy
# was spent, unmeasured), so not "nothing spent".
NO_FIGURE = "no energy figure yet"
# A figure whose provenance says neither measured, estimated nor computed: none recorded
# (a summary.json without `source`), "unknown" (a PowerSource of your own that names none).
# Counted in the total, never as "measured".
UNRECORDED = "provenance not recorded"


@dataclass(frozen=True)
class SweepTotal:
    """The sweep's energy by part: (kind, component, source) -> joules.

    kind: METER (the sweep's own meter, the GPUs), BESIDE (a covered attempt's CPU or
    DRAM, the run's figure) or OWN (an attempt no session covers, the run's figure)."""

    parts: dict = field(default_factory=dict)
    sessions: int = 0
    union_s: float = 0.0
    runs_own_j: float = 0.0  # the runs' own figures added up, every attempt
    # Runs whose summary.json could not be read: what they spent is not in the total
    # (the budget then starts no run: `budget.allows_next`).
    unreadable: tuple = ()
    # Original pipeline's runs with epochs without a power reading: their known epochs
    # count (energy already spent is never dropped), a lower bound, and the total says so.
    partial: tuple = ()

    def _of_kind(self, kind: str) -> float:
        return math.fsum(j for (_, _, s), j in self.parts.items() if kind_of(s) == kind)

    @property
    def estimated_j(self) -> float:
        return self._of_kind("estimated")

    @property
    def measured_j(self) -> float:
        """The metered joules only: neither an estimate nor the seed format's COMPUTED."""
        return self._of_kind("measured")

    @property
    def computed_j(self) -> float:
        """The seed format's joules (COMPUTED from one power sample per epoch)."""
        return self._of_kind(COMPUTED)

    @property
    def unrecorded_j(self) -> float:
        """Joules whose provenance names no measurement, estimate or computation."""
        return self._of_kind(UNRECORDED)

    @property
    def total_j(self) -> float:
        return self.measured_j + self.computed_j + self.estimated_j + self.unrecorded_j

    @property
    def provenance(self) -> str:
        """measured, estimated, COMPUTED, their mix ("measured + estimated") where more
        than one counts, or NO_FIGURE (before any run, or runs without a figure: no word
        would be true)."""
        return words_of(self.measured_j, self.estimated_j, self.computed_j, self.unrecorded_j)

    def to_json(self) -> dict:
        """analysis.json's `sweep_energy`: the total, its provenance and its parts."""
        sources = sorted({s for (kind, _, s) in self.parts if kind == METER})
        return {"energy_j": self.total_j, "provenance": self.provenance,
                "measured_j": self.measured_j, "estimated_j": self.estimated_j,
                "computed_j": self.computed_j, "unrecorded_j": self.unrecorded_j,
                "parts": [{"kind": k, "component": c, "source": s, "energy_j": j}
                          for (k, c, s), j in sorted(self.parts.items())],
                "sessions": self.sessions, "union_s": self.union_s,
                "source": " + ".join(sources) or None, "runs_own_j": self.runs_own_j,
                **({"unreadable_runs": [f"{i:03d}" for i in self.unreadable]}
                   if self.unreadable else {}),
                **({"partial_runs": [f"{i:03d}" for i in self.partial]}
                   if self.partial else {})}


def words_of(measured_j: float, estimated_j: float, computed_j: float = 0.0,
             unrecorded_j: float = 0.0) -> str:
    """The budget's words for a total's provenance, here for every total of the sweep:
    each kind that counts, never one word for two ("measured + COMPUTED", "measured +
    estimated"). `computed_j`: the seed format's joules (COMPUTED), never "measured";
    `unrecorded_j`: joules of no recorded provenance (UNRECORDED), never "measured"."""
    named = [name for name, j in (("measured", measured_j), (COMPUTED, computed_j),
                                  ("estimated", estimated_j), (UNRECORDED, unrecorded_j))
             if j > 0]
    return " + ".join(named) or NO_FIGURE


def split_of(total: "SweepTotal") -> str | None:
    """Each kind's joules of a total that adds up more than one ("266.6 J measured +
    1037.9 J estimated"), so that a reader sees how much of it is an estimate; None
    where it holds one kind."""
    named = [f"{j:.1f} J {name}" for name, j in (
        ("measured", total.measured_j), (COMPUTED, total.computed_j),
        ("estimated", total.estimated_j), (UNRECORDED, total.unrecorded_j)) if j > 0]
    return " + ".join(named) if len(named) > 1 else None


EVERY_RUN = 10**12  # `runfolder.present`'s bound that leaves no run folder out


def runs_of(sweep_dir: Path) -> int:
    """settings.runs as sweep.json records it; every run folder where it does not."""
    try:
        settings = (runfolder.read_json(Path(sweep_dir) / "sweep.json") or {}).get("settings")
    except runfolder.Unreadable:
        settings = None
    runs = (settings or {}).get("runs")
    return runs if isinstance(runs, int) and runs > 0 else EVERY_RUN


def of(sweep_dir: "str | Path") -> SweepTotal:
    """The sweep's total over every run folder it holds: a folder above settings.runs (an
    earlier invocation's, with more runs) spent its energy too, and is never dropped."""
    return Totals().of(sweep_dir)


class Totals:
    """The sweep's total, worked out again and again as the sweep grows (the console's
    line after each run): `of`'s figures, to the bit, from `of`'s own code, but each run
    folder's summary.json is read only when it changed since the last call (its inode,
    size or times: the callback replaces it whole), so a line costs the changed runs'
    reads, not every run's: at thousands of runs, reading all of them per line made the
    progress line itself slow (O(n^2) reads over a sweep). The ledger is read every time
    (small); when its sessions change, every run's covered share is worked out again from
    the kept figures, in memory. Not thread-safe: the caller holds a lock (Progress does).
    Whether a folder changed, and when what was read may be kept: `kept.signature` and
    `kept.settled` (a summary written in the last two seconds is read again next time).

    Attributes:
        reads: Run folders read so far (their summary.json, or an original pipeline's
            logs.csv): what a caller can check the cache by.
    """

    def __init__(self) -> None:
        self.reads = 0
        self._sweep: Path | None = None
        self._runs: dict[int, _Run] = {}
        self._folders: dict[int, str] = {}
        self._books: tuple = ()

    def of(self, sweep_dir: "str | Path") -> SweepTotal:
        """The sweep's total over every run folder, as `sweep_total.of` gives it."""
        sweep_dir = Path(sweep_dir)
        recorded, books = self._sessions(sweep_dir)
        parts: dict = defaultdict(float)
        for s in recorded:
            parts[(METER, "gpu", str(s["source"]))] += float(s["energy_j"])
        own: list[float] = []
        unreadable: list[int] = []
        partial: list[int] = []
        now_ns = time.time_ns()
        # Added up in run, attempt and component order, as ever: the same floats each time.
        for i in runfolder.present(sweep_dir, EVERY_RUN):
            run = self._run(sweep_dir, i, now_ns)
            if run is None:
                unreadable.append(i)
                continue
            for key, joules in run.shares_under(books):
                parts[key] += joules
            own.extend(run.own)
            if run.partial:
                partial.append(i)
        return SweepTotal(dict(parts), len(recorded),
                          math.fsum(float(s.get("union_s") or 0.0) for s in recorded),
                          math.fsum(own), tuple(unreadable), tuple(partial))

    def _sessions(self, sweep_dir: Path) -> tuple[list[dict], tuple]:
        """The ledger's sessions the total uses, and their windows (`_covered`'s books)."""
        if sweep_dir != self._sweep:  # another sweep: nothing kept is its
            self._sweep, self._runs, self._folders = sweep_dir, {}, {}
        recorded = sessions_of(sweep_dir)
        books = tuple(Session.of(s) for s in recorded)
        if books != self._books:  # a session recorded or grown: every covered share moves
            self._books = books
            for run in self._runs.values():
                run.shares = None
        return recorded, books

    def _run(self, sweep_dir: Path, index: int, now_ns: int) -> "_Run | None":
        """Run `index`'s figures: kept ones while its files are unchanged, else read now."""
        if index not in self._folders:  # a Path per run per line cost more than its stat
            self._folders[index] = str(runfolder.run_dir(sweep_dir, index))
        signature = kept.signature(self._folders[index])
        known = self._runs.get(index)  # the signature first: a later write is seen next time
        if known is not None and known.signature == signature:
            return known
        self.reads += 1
        self._runs.pop(index, None)
        run = _read(runfolder.RunFolder.of(sweep_dir, index), signature)
        # Kept only when settled: a failed read may succeed next time, a fresh file change.
        if run is not None and kept.settled(signature, now_ns):
            self._runs[index] = run
        return run


@dataclass
class _Run:
    """One run folder's figures, as read: per attempt, its window, the GPUs it measured
    and each component's (joules, provenance); `shares` its parts under the books last
    seen."""

    signature: tuple | None
    attempts: list  # [((t_start, t_end), uuids, [(component, joules, source)])]
    shares: list | None = None
    partial: bool = False  # an original pipeline's run with epochs without a reading

    @cached_property
    def own(self) -> list[float]:
        return [joules for _, _, components in self.attempts for _, joules, _ in components]

    def shares_under(self, books: tuple) -> list[tuple[tuple, float]]:
        """(part, joules) for each piece of each attempt, in order: the rule of the module
        docstring, the covered seconds' CPU and DRAM BESIDE the meter, the rest OWN."""
        if self.shares is None:
            self.shares = []
            for window, uuids, components in self.attempts:  # each on its own GPUs
                inside = covered(window, uuids, books)
                for component, joules, source in components:
                    if inside < 1.0:
                        self.shares.append(((OWN, component, source), joules * (1.0 - inside)))
                    if inside > 0.0 and component != "gpu":
                        self.shares.append(((BESIDE, component, source), joules * inside))
        return self.shares


def _read(folder: runfolder.RunFolder, signature: tuple | None) -> "_Run | None":
    """A folder's figures: its summary's attempts; an original pipeline's folder, its seed
    figure as one attempt no session covers (no window); no attempt where it has no
    summary.json (nothing says what it spent). None where a file could not be read: left
    out of this total and named in its `unreadable`, and read again next time."""
    try:
        summary = folder.summary()
        if summary is None:
            if not folder.is_seed_format():
                return _Run(signature, [])
            from .collect import SEED_SOURCE

            nowhere = (math.nan, math.nan)  # `_covered`: 0, so all of it counts OWN
            epochs = folder.seed_epoch_joules()
            known = math.fsum(j for j in epochs if not math.isnan(j))
            return _Run(signature, [(nowhere, frozenset(), [("gpu", known, SEED_SOURCE)])],
                        partial=any(map(math.isnan, epochs)))
    except (runfolder.Unreadable, OSError, ValueError, KeyError, IndexError):
        return None
    return _Run(signature, [
        (window, uuids, [(c, joules, _source(summary, c, attempt_source))
                         for c, joules in components.items()])
        for window, uuids, components, attempt_source in _attempts(summary)])


def _attempts(summary) -> list[tuple[tuple[float, float], frozenset, dict, str]]:
    """Each attempt's window, the GPUs it measured (`RunSummary.gpus_of`: a run resumed on
    other GPUs was judged by its last attempt's, and an attempt a session had metered on
    GPU 0 counted again at its own figure), its joules by component (finite ones only) and
    its own provenance where it records one. An attempt recorded before components were: the
    run's split where it has one, else the GPU's for a GPU source and the CPU's otherwise.
    A summary with no attempts: its total."""
    raw = [a for a in summary.raw.get("attempts") or [] if isinstance(a, dict)]
    records = list(zip(summary.attempts, raw)) or [
        (Attempt(summary.t_start, summary.t_end, summary.energy_j, math.nan), {})]
    out = []
    for attempt, record in records:
        split = {str(c): float(j) for c, j in (record.get("components") or {}).items()
                 if isinstance(j, (int, float)) and math.isfinite(j)}
        # An attempt's total is NaN where one component is (a RAPL zone without a
        # reading): its other components were measured and count; skipping the attempt
        # dropped a GPU's 1500 J with its CPU's unknown.
        if not split and not math.isfinite(attempt.energy_j):
            continue
        out.append(((attempt.t_start, attempt.t_end), summary.gpus_of(attempt),
                    split or _split(summary, attempt.energy_j), str(record.get("source") or "")))
    return out


def _split(summary, joules: float) -> dict:
    whole = {c: p.energy_j for c, p in summary.components.items() if math.isfinite(p.energy_j)}
    total = math.fsum(whole.values())
    if whole and total > 0:
        return {c: joules * j / total for c, j in whole.items()}
    gpu = any(b.startswith(GPU_BASES) for b, _ in provenance.parts(summary.source))
    return {"gpu" if gpu else "cpu": joules}


def _source(summary, component: str, attempt_source: str) -> str:
    """A component's provenance in one attempt: the part of the attempt's own source that
    measures it (its GPU meter, RAPL, the CPU-time estimate); else the run's, as its
    summary records it. A component neither names (an earlier attempt's, another source
    then): the GPU and DRAM are only ever measured; the CPU counts as an estimate, as it
    may have been."""
    for base, extra in provenance.parts(attempt_source) if attempt_source else []:
        if (base.startswith(GPU_BASES) if component == "gpu" else
                base.startswith("measured:rapl") or (component == "cpu"
                                                     and base.startswith("estimated:"))):
            return ";".join([base, *extra])
    if component in summary.components:
        return summary.components[component].source
    if not summary.components:  # a folder from before the split: one source
        return summary.source
    if component in ONLY_MEASURED:
        return f"measured:{component} (source not recorded)"
    return f"estimated:{component} (source not recorded)"


def in_joules(j: float) -> str:
    return f"{j:.1f} J"


def computed(source) -> bool:
    """Whether a figure's provenance is, in part, the seed format's "computed:" figure
    (collect.SEED_SOURCE: a power reading per epoch times its duration), no estimate in it."""
    return not provenance.estimated(source) and any(
        base.startswith("computed:") for base, _ in provenance.parts(str(source)))


def kind_of(source: str) -> str:
    """"measured" (`provenance.is_measured`: in every part), "estimated"
    (`provenance.estimated`, in part), COMPUTED (the seed format's figure, in part) or
    UNRECORDED (none of these: no source recorded, "unknown"): a part's provenance in a
    word. Never "measured" for a figure computed from power samples, nor for one whose
    provenance nobody recorded."""
    if provenance.estimated(source):
        return "estimated"
    if computed(source):
        return COMPUTED
    return "measured" if is_measured(source) else UNRECORDED


def words(record: dict, text=in_joules, name=str) -> str:
    """The total's parts in words, from `to_json`'s record, led by its provenance: e.g.
    "measured: each GPU measured once by the sweep's own meter over the union of the runs'
    windows, 1781.5 J (measured:nvidia-smi); 434.6 J the runs' own figures for attempts
    that meter did not cover (...)". `text` formats joules, `name` a part's provenance
    (said unless it is the lead's, e.g. "measured" in a measured total)."""
    parts, lead = record.get("parts") or [], record.get("provenance") or NO_FIGURE

    def part(kind: str, component: str | None, label) -> str | None:
        chosen = [p for p in parts if p["kind"] == kind and component in (None, p["component"])]
        if not chosen:
            return None
        named = "; ".join(sorted({name(p["source"]) for p in chosen}))
        said = label(text(math.fsum(p["energy_j"] for p in chosen)))
        return said + (f" ({named})" if named != lead else "")

    said = [part(METER, None, lambda j: "each GPU measured once by the sweep's own meter "
                                        f"over the union of the runs' windows, {j}"),
            part(BESIDE, "cpu", lambda j: f"CPU {j}, the runs' own figures"),
            part(BESIDE, "dram", lambda j: f"DRAM {j}, the runs' own figures"),
            part(OWN, None, lambda j: f"{j} the runs' own figures for attempts that meter "
                                      "did not cover")]
    said = [s for s in said if s]
    if said and not any(p["kind"] != OWN for p in parts):  # no meter: the runs' figures
        said = [part(OWN, None, lambda j: "the runs' own figures added up, unfinished runs "
                                          "included")]
    if record.get("estimated_j", 0) > 0:
        lead += ", in part an estimate" if (record.get("measured_j", 0)
                                            + record.get("computed_j", 0)) > 0 else \
            ", not a measurement"
    lacking = record.get("partial_runs")
    if lacking:
        said.append(f"run(s) {', '.join(lacking)} counted over the epochs that have a power "
                    "reading only, so the total is a lower bound")
    return f"{lead}: " + ("; ".join(said) or "no run has recorded its energy")
