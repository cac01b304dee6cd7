"""Benchmark (not a test): `analyze` and `report` wall time and peak memory at 100, 1000
and 5000 runs of the original pipeline's format (issue 27).

For each size, tests/seedsweep.py writes the run folders into a temporary directory
(planted drivers, 50 epochs per run by default, as in the original study); then
analyze and report each run in a fresh Python process, so that every figure includes
the interpreter and its imports, as a user's command does. The process reports its own
peak resident memory (getrusage) and the time of the call itself; the parent times the
whole process. --profile adds, per stage, the greenscreen_pipeline functions that took
the most time (cProfile, in a separate process, so the timings above are not slowed).

Usage: python benchmarks/report_scale.py [--sizes 100,1000,5000] [--epochs 50]
       [--profile] [--code DIR] [--out benchmarks/results/report_scale.json]
Before the fixes: git archive d2a57d9 greenscreen greenscreen_pipeline | tar -x -C /tmp/old
and --code /tmp/old (its folder has no git: the JSON names the folder).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from seedsweep import write_sweep  # noqa: E402

# Run in the child: one stage, its own timing and peak memory as one JSON line.
CHILD = """
import json, resource, sys, time
from pathlib import Path
stage, sweep, profile = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "1"
from greenscreen_pipeline import analysis, report
call = {"analyze": lambda: analysis.analyze(sweep, floor=0.02, rule="run"),
        "report": lambda: report.build(sweep, sweep / "report.pdf")}[stage]
top = []
start = time.perf_counter()
if profile:
    import cProfile, pstats
    prof = cProfile.Profile()
    prof.runcall(call)
    stats = pstats.Stats(prof).stats
    ours = [(f"{Path(k[0]).name}:{k[2]}", v[3]) for k, v in stats.items()
            if "greenscreen_pipeline" in k[0]]
    top = [[name, round(t, 2)] for name, t in sorted(ours, key=lambda x: -x[1])[:12]]
else:
    call()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"call_s": round(seconds, 2), "peak_rss_mb": round(peak), "top": top}))
"""


def stage(name: str, sweep: Path, code: Path, profile: bool = False) -> dict:
    """One stage in a fresh process: its wall time, the call's own time, peak memory. A
    stage that fails is recorded with its error's last line (the old report's crash)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, name, str(sweep), "1" if profile
                           else "0"], cwd=code, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode:
        return {"wall_s": round(wall, 2), "failed": done.stderr.strip().splitlines()[-1][:300]}
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": round(wall, 2), **measured} if not profile else {"top": measured["top"]}


def size(runs: int, epochs: int, profile: bool, code: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        sweep = write_sweep(Path(tmp) / "sweep", runs, epochs=epochs)
        row = {"runs": runs, "epochs": epochs,
               "generate_s": round(time.perf_counter() - start, 2)}
        for name in ("analyze", "report"):
            row[name] = stage(name, sweep, code)
            if profile and "failed" not in row[name]:
                row[name]["top"] = stage(name, sweep, code, profile=True)["top"]
        row["pdf_pages"] = _pages(sweep / "report.pdf") if "failed" not in row["report"] else 0
    row["load_average_after"] = round(__import__("os").getloadavg()[0], 2)  # shared machine?
    print(f"{runs} runs:", *(f"{k} {row[k].get('failed') or row[k]['wall_s']}"
                             for k in ("analyze", "report")), file=sys.stderr)
    return row


def _pages(pdf: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(str(pdf)).pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--code", default=str(ROOT), help="a checkout (e.g. from git "
                        "archive) whose greenscreen_pipeline to measure; this one writes the "
                        "folders")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = [size(int(n), args.epochs, args.profile, Path(args.code))
            for n in args.sizes.split(",")]
    for stage_name in ("analyze", "report"):  # per-run cost: flat when the growth is linear
        for row in rows:
            if "call_s" in row[stage_name]:
                row[stage_name]["ms_per_run"] = round(
                    1000 * row[stage_name]["call_s"] / row["runs"], 1)
    emit({"benchmark": "report_scale", "date": time.strftime("%Y-%m-%d"),
          "machine": f"{platform.machine()}, {_cores()} cores, Python "
                     f"{platform.python_version()}", "code": _commit(Path(args.code)),
          "sizes": rows}, args.out)


def _commit(code: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=code,
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or str(code)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
