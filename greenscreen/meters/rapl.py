"""CPU package and DRAM energy from Linux RAPL, through the powercap sysfs tree.

Where it reads: `$GREENSCREEN_POWERCAP_ROOT` if set (a container that mounts the tree
elsewhere; tests), else `/sys/class/powercap`. That folder lists every zone flat
(`intel-rapl:0`, `intel-rapl:0:0`, ...) as links into `/sys/devices/virtual/powercap`,
where the sub-zones sit inside their package's folder; either layout (or both at once)
is read, each zone once (zones are told apart by their real path).

What it adds up: each zone is identified by its `name` file, not by its position.

- `package-N`: the CPU package (socket) N -> component "cpu";
- `dram`: the DRAM of the package it sits under -> component "dram". RAPL's DRAM
  domain is separate from the package domain: its energy is not in `package-N`;
- `core`, `uncore` (PP0, PP1): parts of the package, already in it -> never added;
- `psys`: the whole platform, package and DRAM included -> not added either.

Each zone's `energy_uj` is unwrapped at that zone's own `max_energy_range_uj`, where
a wrap is plausible (the energy it implies could have been drawn since the last read);
a counter that goes back otherwise (a reset), or whose range is not known, is rebased:
that interval's energy is not counted, the sample says `counter_reset`, the window's
interval widens, and `health` counts it ("counter_resets") with the reason. A
component is measured only if every one of its zones can be read (a
`max_energy_range_uj` that is not a number makes its zone unreadable); otherwise
`unreadable` names the zone and the reason (e.g. "permission denied": since Linux
5.10 `energy_uj` is readable by root only unless an administrator grants access).
A zone that fails to read while running is left out of that reading alone, counted
in `health.read_errors`: the other zones keep their readings.

AMD: recent kernels expose AMD's RAPL (Zen and later) through the same `intel-rapl`
tree: `package-N` zones (and on some kernels a `core` sub-zone, not added), usually
no `dram` zone, so only "cpu" is measured there and "dram" says why not. The MMIO
interface (`intel-rapl-mmio:N`) repeats a package already under `intel-rapl` and is
read only for a package that `intel-rapl` lacks.

Example:

```python
from greenscreen.meters import RaplSource

source = RaplSource()
print(source.unavailable_reason() or source.components, source.unreadable)
```
"""

from __future__ import annotations

import os
import re
import time

from ..validation import invalid
from .base import PolledSource, Sample, SourceUnavailable

DEFAULT_ROOT = "/sys/class/powercap"
ENV_ROOT = "GREENSCREEN_POWERCAP_ROOT"
CONTROL_TYPES = ("intel-rapl", "intel-rapl-mmio")  # MSR first: MMIO repeats its packages
_ZONE = re.compile(r"^(intel-rapl(?:-mmio)?):(\d+)(?::\d+)*$")
_NOT_ADDED = ("core", "uncore", "psys")
# A step back of a counter is a wrap only if the energy it implies, over the time since the
# last read, is below this: far above any CPU package's or DRAM's draw.
MAX_PLAUSIBLE_W = 5000.0
COUNTER_UPDATE_S = 0.001  # RAPL updates its counters about every millisecond


def default_root() -> str:
    """The powercap tree to read: `$GREENSCREEN_POWERCAP_ROOT`, else /sys/class/powercap."""
    return os.environ.get(ENV_ROOT) or DEFAULT_ROOT


class Zone:
    """One readable RAPL zone: its counter, unwrapped at its own range."""

    def __init__(self, path: str, control: str, package: int, name: str,
                 component: str) -> None:
        self.path, self.control, self.package = path, control, package
        self.name, self.component = name, component
        self.label = f"{os.path.basename(path)} ({name})"
        # Where the counter wraps; 0: no file. One that is not a number makes the zone
        # unreadable (`_why_unreadable`): its wraps could not be told from resets.
        self.max_uj, self.range_fault = _range_uj(
            _read(os.path.join(path, "max_energy_range_uj")))
        self.last_uj: int | None = None
        self.last_t = 0.0  # time.monotonic() of the last read
        self.total_uj = 0
        self.reset = False  # the last read rebased a counter that went back (not a wrap)

    def raw_uj(self) -> int:
        with open(os.path.join(self.path, "energy_uj")) as fh:
            return int(fh.read().strip())

    def energy_mj(self) -> float:
        """Energy since the first read, in mJ. A counter that went back wrapped (this
        zone's range is added once) where that is plausible; else it was reset: rebased,
        nothing added, and `reset` says so."""
        raw, now = self.raw_uj(), time.monotonic()
        self.reset = False
        if self.last_uj is not None:
            delta = raw - self.last_uj
            if delta < 0 and self._wrapped(delta, now - self.last_t):
                delta += self.max_uj
            elif delta < 0:
                self.reset, delta = True, 0
            self.total_uj += delta
        self.last_uj, self.last_t = raw, now
        return self.total_uj / 1000.0

    def _wrapped(self, delta: int, seconds: float) -> bool:
        """Whether a step back of `delta` uJ is a wrap: the range is known and the energy
        the wrap implies is one the zone could have drawn in the time (a reset to near 0
        would imply most of a ~262 kJ range within a read interval)."""
        if self.max_uj <= 0:
            return False
        seconds = max(seconds, COUNTER_UPDATE_S)  # reads closer than the update are one
        return (delta + self.max_uj) / 1e6 <= MAX_PLAUSIBLE_W * seconds


def find_zones(root: str) -> tuple[list[Zone], dict[str, str]]:
    """Every package and dram zone under `root`, each once, and the zones left out, with why.

    Raises:
        SourceUnavailable: There is no powercap tree at `root`, or no package zone in it.
    """
    try:
        entries = sorted(os.listdir(root))
    except OSError as exc:
        raise SourceUnavailable(f"no RAPL powercap tree at {root}: {exc.strerror}") from exc
    seen: set[str] = set()
    found: list[tuple[str, str, int, str]] = []  # (path, control type, package, name)

    def walk(folder: str, names: list[str]) -> None:
        for entry in names:
            path = os.path.join(folder, entry)
            match = _ZONE.match(entry)
            if entry in CONTROL_TYPES and os.path.isdir(path):
                walk(path, _listdir(path))  # the nested layout's control-type folder
            elif match and os.path.isdir(path):
                real = os.path.realpath(path)
                if real in seen:
                    continue  # a flat link to a zone the nested walk found, or the reverse
                seen.add(real)
                found.append((path, match.group(1), int(match.group(2)),
                              _read(os.path.join(path, "name")).strip()))
                walk(path, _listdir(path))

    walk(root, entries)
    zones, skipped, packages, drams = [], {}, set(), set()
    for control in CONTROL_TYPES:  # MSR zones first, so MMIO adds only missing packages
        for path, ctl, package, name in sorted(found):
            if ctl != control:
                continue
            label = f"{os.path.basename(path)} ({name or 'no name'})"
            if name.startswith("package"):
                if package in packages:
                    skipped[label] = "the same package is read through intel-rapl"
                    continue
                packages.add(package)
                zones.append(Zone(path, ctl, package, name, "cpu"))
            elif name == "dram":
                if package in drams:  # MMIO's view of a DRAM domain intel-rapl reads
                    skipped[label] = "the same package's DRAM is read through intel-rapl"
                    continue
                drams.add(package)
                zones.append(Zone(path, ctl, package, name, "dram"))
            else:
                skipped[label] = ("inside the package's energy, not added again"
                                  if name in _NOT_ADDED else "not a package or dram zone")
    if not packages:
        raise SourceUnavailable(f"no intel-rapl package zone under {root}")
    return zones, skipped


class RaplSource(PolledSource):
    """Polls RAPL package ("cpu") and DRAM ("dram") zones.

    Args:
        interval: Seconds between reads.
        root: The powercap tree; default `$GREENSCREEN_POWERCAP_ROOT` or
            /sys/class/powercap.

    After `open` (or `unavailable_reason`), `components` lists what is measured
    and `unreadable` maps each component that is not to the reason.
    """

    name = "rapl"
    provenance = "measured:rapl"
    reads_on_demand = True

    def __init__(self, interval: float = 0.1, root: str | None = None) -> None:
        super().__init__(interval)
        if root is not None and (not isinstance(root, (str, os.PathLike)) or not str(root)):
            raise invalid("root", root, "the folder of a powercap tree (a path), or None "
                          "for $GREENSCREEN_POWERCAP_ROOT or /sys/class/powercap")
        self.root = str(root) if root is not None else default_root()
        self._zones: list[Zone] = []
        self.components: tuple[str, ...] = ()
        self.unreadable: dict[str, str] = {}
        self.left_out: dict[str, str] = {}  # zones not added (core, uncore, psys, ...)

    def _probe(self) -> list[Zone]:
        """The zones of every component that can be read in full; sets `components`,
        `unreadable` and `left_out`."""
        zones, self.left_out = find_zones(self.root)
        failed: dict[str, list[str]] = {}
        for zone in zones:
            why = _why_unreadable(zone)
            if why:
                failed.setdefault(zone.component, []).append(f"{zone.label}: {why}")
        self.unreadable = {c: "; ".join(why) for c, why in failed.items()}
        if not any(z.component == "dram" for z in zones):
            self.unreadable["dram"] = (f"no dram zone under {self.root} (AMD CPUs and many "
                                       "desktop CPUs expose package zones only)")
        self.components = tuple(c for c in ("cpu", "dram")
                                if c not in self.unreadable and any(z.component == c
                                                                    for z in zones))
        return [z for z in zones if z.component in self.components]

    def unavailable_reason(self) -> str | None:
        try:
            self._probe()
        except SourceUnavailable as exc:
            return str(exc)
        if not self.components:
            return "RAPL cannot be read: " + "; ".join(self.unreadable.values())
        return None

    def open(self) -> None:
        reason = self.unavailable_reason()
        if reason:
            raise SourceUnavailable(reason)
        self._zones = self._probe()

    def expected_devices(self) -> list[tuple[str, int, str, str]]:
        return [(z.component, z.package, _uuid(z), z.name) for z in self._zones]

    def read(self) -> list[Sample]:
        """One sample per zone that can be read now. A zone that fails is left out of
        this reading (and counted in `health`): the other zones' components keep theirs."""
        now, samples, failed = time.time(), [], []
        for z in self._zones:
            try:
                energy = z.energy_mj()
            except (OSError, ValueError) as exc:
                failed.append(f"{z.label}: {exc}")
                continue
            if z.reset:
                self._record_reset(z)
            samples.append(Sample(
                t=now, index=z.package, uuid=_uuid(z), name=z.name,
                energy_mj=energy, component=z.component,
                energy_range_mj=z.max_uj / 1000.0 if z.max_uj > 0 else float("nan"),
                counter_reset=z.reset))
        if failed:
            self.health.read_errors += len(failed)
            self.health.reason = f"{self.name} read failed: " + "; ".join(failed)
        return samples

    def _record_reset(self, zone: Zone) -> None:
        resets = self.health.counts.get("counter_resets", 0) + 1
        self.health.counts["counter_resets"] = resets
        why = ("its max_energy_range_uj is not known" if zone.max_uj <= 0
               else "too far for a wrap")
        self.health.reason = (f"{self.name}: {zone.label}'s energy_uj went back ({why}): "
                              "rebased, that interval's energy not counted")


def _uuid(zone: Zone) -> str:
    """The id a zone's readings carry: "rapl:intel-rapl:0"."""
    return f"rapl:{os.path.basename(zone.path)}"


def _why_unreadable(zone: Zone) -> str | None:
    if zone.range_fault:
        return zone.range_fault
    try:
        zone.raw_uj()
    except PermissionError:
        return ("permission denied reading energy_uj (readable by root only since Linux "
                "5.10, unless an administrator grants read access)")
    except (OSError, ValueError) as exc:
        return f"energy_uj cannot be read: {exc}"
    return None


def _range_uj(text: str) -> tuple[int, str | None]:
    """max_energy_range_uj in uJ (0: not known, where the file is missing or empty),
    and what is wrong with it where it is not an integer >= 0."""
    if not text.strip():
        return 0, None
    try:
        value = int(text.strip())
    except ValueError:
        return 0, f"max_energy_range_uj is not a number: {text.strip()[:40]!r}"
    return (value, None) if value >= 0 else (0, f"max_energy_range_uj is {value}")


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""
