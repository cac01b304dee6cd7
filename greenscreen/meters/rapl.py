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

Each zone's `energy_uj` is unwrapped at that zone's own `max_energy_range_uj`. A
component is measured only if every one of its zones can be read; otherwise
`unreadable` names the zone and the reason (e.g. "permission denied": since Linux
5.10 `energy_uj` is readable by root only unless an administrator grants access).

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

from .base import PolledSource, Sample, SourceUnavailable

DEFAULT_ROOT = "/sys/class/powercap"
ENV_ROOT = "GREENSCREEN_POWERCAP_ROOT"
CONTROL_TYPES = ("intel-rapl", "intel-rapl-mmio")  # MSR first: MMIO repeats its packages
_ZONE = re.compile(r"^(intel-rapl(?:-mmio)?):(\d+)(?::\d+)*$")
_NOT_ADDED = ("core", "uncore", "psys")


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
        self.max_uj = int(_read(os.path.join(path, "max_energy_range_uj")) or 0)
        self.last_uj: int | None = None
        self.total_uj = 0

    def raw_uj(self) -> int:
        with open(os.path.join(self.path, "energy_uj")) as fh:
            return int(fh.read().strip())

    def energy_mj(self) -> float:
        """Energy since the first read, in mJ; a wrap adds this zone's range once."""
        raw = self.raw_uj()
        if self.last_uj is not None:
            delta = raw - self.last_uj
            if delta < 0:  # the counter wrapped around
                delta += self.max_uj
            self.total_uj += max(delta, 0)
        self.last_uj = raw
        return self.total_uj / 1000.0


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
    zones, skipped, packages = [], {}, set()
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
        self.root = root if root is not None else default_root()
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

    def read(self) -> list[Sample]:
        now = time.time()
        return [Sample(t=now, index=z.package, uuid=f"rapl:{os.path.basename(z.path)}",
                       name=z.name, energy_mj=z.energy_mj(), component=z.component,
                       energy_range_mj=z.max_uj / 1000.0 if z.max_uj > 0 else float("nan"))
                for z in self._zones]


def _why_unreadable(zone: Zone) -> str | None:
    try:
        zone.raw_uj()
    except PermissionError:
        return ("permission denied reading energy_uj (readable by root only since Linux "
                "5.10, unless an administrator grants read access)")
    except (OSError, ValueError) as exc:
        return f"energy_uj cannot be read: {exc}"
    return None


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
