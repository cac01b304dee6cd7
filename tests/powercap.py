"""A fake Linux powercap tree for tests: RAPL zones whose energy counters advance at a
known power and wrap at each zone's own max_energy_range_uj.

    zones(t0), truth(spec, ids, a, b)   a two-socket node's zones, and the joules of some
    running(folder, spec, layout)      the tree below, with the writer running
    writer_lag(folder), peak_w(spec, ids)   how stale a counter may have been, and the
                                       zones' peak power: the edge error the fake allows
    edge_slack(folder, spec, ids)      that error over a window's two edges, in joules
    assert_near_truth(joules, spec, ids, a, b, folder, rel)   within rel of the truth
                                       over [a, b], plus edge_slack
    build(root, zones, layout)   the folders and files, like the kernel's:
        "nested": <root>/devices/virtual/powercap/intel-rapl/intel-rapl:0/intel-rapl:0:0/...
        "flat":   the nested tree plus <root>/class/powercap/ listing every zone (and the
                  control type) as a link into it, as /sys/class/powercap does
    returns the folder to point GREENSCREEN_POWERCAP_ROOT at.

    python tests/powercap.py <root given to build> <zones.json>
        the writer: rewrites every zone's energy_uj every millisecond or so (in place,
        at a fixed width) with the closed-form integral of its power since "t0", modulo
        its range, until killed. A zone spec: {"id": "intel-rapl:0:2", "name": "dram",
        "max_uj": 9e6, "power": {"base": 6, "amp": 2, "period": 0.7}} (see
        conftest.trace_energy);
        "unreadable": true puts a folder where energy_uj should be (tests run as root,
        where chmod 000 stops nobody).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from conftest import trace_energy  # noqa: E402

PERIOD_S = 0.001
LAG_FILE = "writer_lag_s"  # beside zones.json: the writer's longest gap between updates
ALIVE_FILE = "writer_running"  # beside zones.json while the writer runs
CPU, DRAM = ("intel-rapl:0", "intel-rapl:1"), ("intel-rapl:0:2", "intel-rapl:1:0")


def zones(t0: float, **changes: dict) -> list[dict]:
    """A two-socket node: two packages, each with core/uncore and DRAM sub-zones, a psys
    zone and an MMIO copy of package 0; the counters wrap every second or two, each at
    its own range. `changes` updates zones by id (e.g. {"intel-rapl:0:2": {"unreadable":
    True}})."""
    out = [
        {"id": "intel-rapl:0", "name": "package-0", "max_uj": 60e6,
         "power": {"base": 40.0, "amp": 15.0, "period": 1.1}},
        {"id": "intel-rapl:0:0", "name": "core", "max_uj": 50e6, "power": {"base": 25.0}},
        {"id": "intel-rapl:0:1", "name": "uncore", "max_uj": 50e6, "power": {"base": 3.0}},
        {"id": "intel-rapl:0:2", "name": "dram", "max_uj": 9e6,
         "power": {"base": 6.0, "amp": 2.0, "period": 0.7}},
        {"id": "intel-rapl:1", "name": "package-1", "max_uj": 45e6, "power": {"base": 30.0}},
        {"id": "intel-rapl:1:0", "name": "dram", "max_uj": 20e6, "power": {"base": 5.0}},
        {"id": "intel-rapl:2", "name": "psys", "max_uj": 90e6, "power": {"base": 120.0}},
        {"id": "intel-rapl-mmio:0", "name": "package-0", "max_uj": 60e6,
         "power": {"base": 40.0}},
    ]
    for zone in out:
        zone["power"]["t0"] = t0
        zone.update(changes.get(zone["id"], {}))
    return out


def truth(spec: list[dict], ids: tuple, a: float, b: float) -> float:
    """The joules the zones `ids` used over [a, b]."""
    return sum(trace_energy(z["power"], a, b) for z in spec if z["id"] in ids)


def zone_dir(base: Path, zone_id: str) -> Path:
    """Where the nested layout keeps a zone: inside its control type and its parents."""
    control, *numbers = zone_id.split(":")
    path = base / control
    for depth in range(1, len(numbers) + 1):
        path = path / ":".join([control, *numbers[:depth]])
    return path


def counter(zone: dict, t: float) -> int:
    """The zone's energy_uj at time t: energy since t0, wrapped at max_uj."""
    spec = zone["power"]
    joules = trace_energy(spec, spec.get("t0", 0.0), t)
    return int(joules * 1e6) % int(zone["max_uj"])


def write_counters(base: Path, zones: list[dict], t: float, fds: dict | None = None) -> None:
    """Every readable zone's energy_uj at time t, rewritten in place: fixed width, so one
    small write replaces the whole value (no truncation a reader could see)."""
    for zone in zones:
        if zone.get("unreadable"):
            continue
        text = f"{counter(zone, t):020d}\n".encode()
        if fds is not None:
            os.pwrite(fds[zone["id"]], text, 0)
        else:
            (zone_dir(base, zone["id"]) / "energy_uj").write_bytes(text)


def build(root: Path, zones: list[dict], layout: str = "nested") -> Path:
    """Writes the tree (counters at their value now); returns the powercap folder."""
    base = root / "devices" / "virtual" / "powercap"
    for zone in zones:
        folder = zone_dir(base, zone["id"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "name").write_text(zone["name"] + "\n")
        (folder / "max_energy_range_uj").write_text(f"{int(zone['max_uj'])}\n")
        if zone.get("unreadable"):
            (folder / "energy_uj").mkdir()
    write_counters(base, zones, time.time())
    if layout == "nested":
        return base
    flat = root / "class" / "powercap"
    flat.mkdir(parents=True)
    for control in {z["id"].split(":")[0] for z in zones}:
        (flat / control).symlink_to(base / control)
    for zone in zones:
        (flat / zone["id"]).symlink_to(zone_dir(base, zone["id"]))
    return flat


@contextmanager
def running(folder: Path, spec: list[dict], layout: str = "nested"):
    """The tree under `folder`, with its writer running; yields the powercap folder to
    point GREENSCREEN_POWERCAP_ROOT at. The writer is killed on the way out."""
    powercap = build(folder / "sys", spec, layout)
    spec_file = folder / "zones.json"
    spec_file.write_text(json.dumps(spec))
    writer = subprocess.Popen([sys.executable, __file__, str(folder / "sys"), str(spec_file)])
    counter = _first_counter(folder)
    try:
        before, deadline = counter.read_text(), time.time() + 60
        while counter.read_text() == before:  # the writer has started
            assert time.time() < deadline and writer.poll() is None, "the writer is not running"
            time.sleep(0.01)
        (folder / ALIVE_FILE).touch()
        yield powercap
    finally:
        if writer.poll() is None:  # a gap still in progress is recorded before it goes
            _caught_up(folder)
        writer.kill()
        writer.wait()
        (folder / ALIVE_FILE).unlink(missing_ok=True)


def _first_counter(folder: Path) -> Path:
    spec = json.loads((folder / "zones.json").read_text())
    first = next(z for z in spec if not z.get("unreadable"))
    return zone_dir(folder / "sys" / "devices" / "virtual" / "powercap",
                    first["id"]) / "energy_uj"


def _caught_up(folder: Path, timeout: float = 10.0) -> None:
    """Waits, while the writer runs, for two more of its updates: the writer records a
    gap only once it ends (at its next update), so a gap in progress when a window
    closed is in the lag file after this."""
    if not (folder / ALIVE_FILE).exists():
        return
    counter, deadline = _first_counter(folder), time.time() + timeout
    for _ in range(2):
        before = counter.read_text()
        while counter.read_text() == before and time.time() < deadline:
            time.sleep(0.001)


def writer_lag(folder: Path) -> float:
    """The longest time, in seconds, between two of the writer's updates so far: a counter
    read at any moment is at most this stale, so a meter's window edge may be off by its
    power times this. A real RAPL counter updates every millisecond; the fake's writer is a
    process that a loaded machine may leave unscheduled for tens of milliseconds."""
    _caught_up(folder)
    try:
        return float((folder / LAG_FILE).read_text())
    except (OSError, ValueError):
        return 0.0


def peak_w(spec: list[dict], ids: tuple[str, ...]) -> float:
    """The zones' highest total power (base + amp each), in watts."""
    return sum(z["power"].get("base", 0.0) + abs(z["power"].get("amp", 0.0))
               for z in spec if z["id"] in ids)


def edge_slack(folder: Path, spec: list[dict], ids: tuple[str, ...]) -> float:
    """The joules a window's energy may be off by from the writer alone: at each of its
    two edges a counter as stale as the writer's longest gap, at the zones' peak power
    (a loaded machine's scheduling, not the meter's error)."""
    return 2 * peak_w(spec, ids) * writer_lag(folder)


def assert_near_truth(joules: float, spec: list[dict], ids: tuple, a: float, b: float,
                      folder: Path, rel: float) -> None:
    """`joules`, measured over [a, b], within `rel` of the zones' truth there, plus what
    the writer allows at the window's two edges (`edge_slack`)."""
    expected = truth(spec, ids, a, b)
    slack = edge_slack(folder, spec, ids)
    assert abs(joules - expected) <= rel * expected + slack, (ids, joules, expected, slack)


def main(root: str, spec: str) -> None:
    base = Path(root) / "devices" / "virtual" / "powercap"
    zones = json.loads(Path(spec).read_text())
    fds = {z["id"]: os.open(zone_dir(base, z["id"]) / "energy_uj", os.O_WRONLY)
           for z in zones if not z.get("unreadable")}
    lag_file, longest, last = Path(spec).with_name(LAG_FILE), 0.0, time.time()
    while True:
        now = time.time()
        write_counters(base, zones, now, fds)
        if now - last > longest:  # said at once, whole (replaced, never half written)
            longest = now - last
            lag_file.with_suffix(".tmp").write_text(f"{longest:.6f}")
            os.replace(lag_file.with_suffix(".tmp"), lag_file)
        last = now
        time.sleep(PERIOD_S)


if __name__ == "__main__":
    main(*sys.argv[1:3])
