"""CPU package energy from Linux RAPL (`/sys/class/powercap/intel-rapl*`).

Reads each package zone's `energy_uj` and unwraps it at `max_energy_range_uj`.
Since Linux 5.10 `energy_uj` is readable by root only; permission denied or a
missing powercap tree makes the source unavailable, with that reason.
Sub-zones (core, uncore, dram) are skipped: they are part of the package.
"""

from __future__ import annotations

import os
import re
import time

from .base import PolledSource, Sample, SourceUnavailable

DEFAULT_ROOT = "/sys/class/powercap"
_PACKAGE = re.compile(r"^intel-rapl:(\d+)$")


class _Zone:
    def __init__(self, path: str, index: int) -> None:
        self.path, self.index = path, index
        self.name = _read(os.path.join(path, "name"), "package").strip()
        self.max_uj = int(_read(os.path.join(path, "max_energy_range_uj"), "0") or 0)
        self.last_uj: int | None = None
        self.total_uj = 0

    def energy_mj(self) -> float:
        with open(os.path.join(self.path, "energy_uj")) as fh:
            raw = int(fh.read().strip())
        if self.last_uj is not None:
            delta = raw - self.last_uj
            if delta < 0:  # the counter wrapped around
                delta += self.max_uj
            self.total_uj += max(delta, 0)
        self.last_uj = raw
        return self.total_uj / 1000.0


class RaplSource(PolledSource):
    """Polls RAPL package zones. `root` can point at another powercap tree."""

    name = "rapl"
    provenance = "measured:rapl"

    def __init__(self, interval: float = 0.1, root: str = DEFAULT_ROOT) -> None:
        super().__init__(interval)
        self.root = root
        self._zones: list[_Zone] = []

    def _find(self) -> list[_Zone]:
        try:
            names = sorted(os.listdir(self.root))
        except OSError as exc:
            raise SourceUnavailable(
                f"no RAPL powercap tree at {self.root}: {exc.strerror}") from exc
        zones = [_Zone(os.path.join(self.root, n), int(m.group(1)))
                 for n in names if (m := _PACKAGE.match(n))]
        if not zones:
            raise SourceUnavailable(f"no intel-rapl package zone under {self.root}")
        return zones

    def unavailable_reason(self) -> str | None:
        try:
            for zone in self._find():
                zone.energy_mj()
        except SourceUnavailable as exc:
            return str(exc)
        except PermissionError:
            return (f"permission denied reading {self.root}/intel-rapl:*/energy_uj "
                    "(readable by root only since Linux 5.10)")
        except (OSError, ValueError) as exc:
            return f"RAPL energy_uj could not be read: {exc}"
        return None

    def open(self) -> None:
        reason = self.unavailable_reason()
        if reason:
            raise SourceUnavailable(reason)
        self._zones = self._find()

    def read(self) -> list[Sample]:
        now = time.time()
        return [Sample(t=now, index=z.index, uuid=f"rapl:{os.path.basename(z.path)}",
                       name=z.name, energy_mj=z.energy_mj()) for z in self._zones]


def _read(path: str, default: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return default
