"""Benchmark (not a test): the console's running total after each run of a sweep, the
old way (`sweep_total.of`: every run folder's summary.json read at every line) against
the kept one (`sweep_total.Totals`: the changed summaries only), at N runs; and the
sweep's GPU meter's reads before each line (the runs' windows and GPUs, `ledger.session`),
every summary (`runfolder.summaries`) against the changed ones (`kept.KeptSummaries`).

For each N, a sweep folder is written one run at a time, as a local sweep leaves it:
run i's summary.json (tests/test_sweep_totals.py's `write_run`: GPU, CPU and DRAM, one
or two attempts), dated back a minute (a run ends minutes after the one before it; a
summary written in the last seconds is read again, `kept.SETTLED_NS`), and, with
--meter (default), the sweep's ledger rewritten with its session grown to the run's end,
as the local sweep's meter records before each line (so every covered share is worked
out again, in memory, at every line). Then the line's total is taken both ways and timed;
both must give the same record (checked every --check lines, outside the timing).

The old way costs O(i) reads at line i, O(N^2) over the sweep: at large N it is timed
at every --old-every'th line only, and its whole-sweep figure is that sample's sum times
the stride (said in the JSON as "old_sampled_every").

Usage: python benchmarks/console_total.py [--sizes 100,1000,3000] [--old-every 1,1,10]
       [--no-meter] [--out benchmarks/results/console_total.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_sweep_totals import RAPL, SMI, write_run  # noqa: E402

from greenscreen_pipeline import kept, ledger, runfolder, sharing, sweep_total  # noqa: E402

UUID = "GPU-00000000-1111-2222-3333-444444444444"


def add_run(sweep: Path, i: int, t0: float) -> float:
    """Run i's folder (every 7th resumed once: two attempts); returns its end."""
    a = t0 + 60.0 * i
    parts = [(a, a + 50.0, {"gpu": 7000.0 + i, "cpu": 900.0 + i % 13, "dram": 80.0})]
    if i % 7 == 3:
        parts = [(a, a + 20.0, {"gpu": 2800.0, "cpu": 360.0, "dram": 32.0}),
                 (a + 25.0, a + 55.0, {"gpu": 4200.0 + i, "cpu": 540.0, "dram": 48.0})]
    write_run(sweep, i, parts, {"gpu": SMI, "cpu": RAPL, "dram": RAPL}, uuid=UUID)
    then = time.time_ns() - 60 * 10**9
    for path in (sweep / f"{i:03d}").iterdir():
        os.utime(path, ns=(then, then))
    return parts[-1][1]


def record_session(sweep: Path, t0: float, t_end: float, i: int) -> None:
    (sweep / ledger.FILE).write_text(json.dumps({"sessions": [
        {"t_start": t0, "t_end": t_end, "energy_j": 6500.0 * (i + 1), "union_s": 50.0 * (i + 1),
         "source": SMI, "devices": ["NVIDIA H200"], "uuids": [UUID]}]}))


def meter_reads(sweep: Path, n: int, read) -> tuple:
    """What the sweep's meter reads of every run before each line (`DeviceLedger.session`:
    the runs' measured windows and their GPUs), through `read`."""
    return ledger.run_windows(sweep, n, read), sharing.uses(sweep, n, read)


def sweep_of(n: int, old_every: int, meter: bool, check: int) -> dict:
    t0 = time.time() - 60.0 * (n + 10)
    totals, kept_reads = sweep_total.Totals(), kept.KeptSummaries()
    old_s = new_s = meter_old_s = meter_new_s = 0.0
    last_old = last_new = last_meter_old = last_meter_new = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp) / "sweep"
        for i in range(n):
            end = add_run(sweep, i, t0)
            if meter:
                record_session(sweep, t0, end, i)
            start = time.perf_counter()
            new = totals.of(sweep, n)
            last_new = time.perf_counter() - start
            start = time.perf_counter()
            new_reads = meter_reads(sweep, n, kept_reads)
            last_meter_new = time.perf_counter() - start
            new_s, meter_new_s = new_s + last_new, meter_new_s + last_meter_new
            if i % old_every == old_every - 1 or i == n - 1:
                weight = old_every if i % old_every == old_every - 1 else 0
                start = time.perf_counter()
                old = sweep_total.of(sweep, n)
                last_old = time.perf_counter() - start
                start = time.perf_counter()
                old_reads = meter_reads(sweep, n, runfolder.summaries)
                last_meter_old = time.perf_counter() - start
                old_s, meter_old_s = old_s + last_old * weight, \
                    meter_old_s + last_meter_old * weight
                if (i + 1) % check == 0 or i == n - 1:
                    assert new.to_json() == old.to_json(), i
                    assert new_reads == old_reads, i
    return {"runs": n, "old_total_s": old_s, "new_total_s": new_s,
            "old_last_line_s": last_old, "new_last_line_s": last_new,
            "old_sampled_every": old_every, "summaries_read_kept": totals.reads,
            "summaries_read_old": n * (n + 1) // 2, "speedup": old_s / new_s,
            "meter_old_total_s": meter_old_s, "meter_new_total_s": meter_new_s,
            "meter_old_last_line_s": last_meter_old, "meter_new_last_line_s": last_meter_new,
            "meter_summaries_read_kept": kept_reads.reads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,3000")
    parser.add_argument("--old-every", default="1,1,10",
                        help="time the old way at every k-th line, per size")
    parser.add_argument("--no-meter", action="store_true")
    parser.add_argument("--check", type=int, default=50)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/console_total.json"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    strides = [int(s) for s in args.old_every.split(",")]
    strides += [strides[-1]] * (len(sizes) - len(strides))
    rows = [sweep_of(n, k, not args.no_meter, args.check) for n, k in zip(sizes, strides)]
    print(f"{'runs':>6} {'old total s':>12} {'new total s':>12} {'old last line':>14} "
          f"{'new last line':>14} {'speedup':>8}")
    for r in rows:
        print(f"{r['runs']:>6} {r['old_total_s']:>12.2f} {r['new_total_s']:>12.2f} "
              f"{r['old_last_line_s'] * 1e3:>11.1f} ms {r['new_last_line_s'] * 1e3:>11.2f} ms "
              f"{r['speedup']:>7.0f}x" + ("  (old sampled)" if r["old_sampled_every"] > 1
                                          else ""))
        print(f"{'':>6} the meter's reads: {r['meter_old_total_s']:.2f} s -> "
              f"{r['meter_new_total_s']:.2f} s in all; the last line "
              f"{r['meter_old_last_line_s'] * 1e3:.1f} ms -> "
              f"{r['meter_new_last_line_s'] * 1e3:.2f} ms")
    emit({"benchmark": "console_total", "meter": not args.no_meter,
          "python": platform.python_version(), "machine": platform.machine(),
          "cpus": os.cpu_count(), "command": " ".join(sys.argv), "rows": rows}, args.out)


if __name__ == "__main__":
    main()
