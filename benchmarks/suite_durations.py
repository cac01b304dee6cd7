"""Benchmark (not a test): where the test suite's time goes, from pytest's own durations.

Reads the output of `pytest --durations=0` (one log per pass: TensorFlow, JAX, torch),
for example of

    PYTEST_ADDOPTS="--durations=0" ./greenscreen.sh test > suite.log 2>&1

and groups the per-test times (setup + call + teardown) by test file and by what the
test mostly waits on, then prints the slowest tests. Two logs side by side (`--before`)
give the before/after table of issue 32. The times are the workers' times: with
pytest-xdist's N workers the wall time is about their sum / N when the workers stay busy.

`--order tests/durations.json` also writes each test's seconds (those of 1 s or more),
from which tests/conftest.py starts the longest tests first (issue 32 item 4).

Usage: python benchmarks/suite_durations.py LOG [--before LOG] [--top 15] [--out FILE]
       [--order tests/durations.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

# The test id runs to the end of the line: a parameter id may hold spaces.
LINE = re.compile(r"^(\d+(?:\.\d+)?)s (setup|call|teardown)\s+(.+?)\s*$")
PASS = re.compile(r"^=+ .*?(\d+) passed.* in ([\d.]+)s")
# What a test file's time mostly is, read from the tests themselves (issue 32's groups).
KIND = {
    "test_pipeline_sweep.py": "whole sweeps (subprocesses)",
    "test_search_sweep.py": "whole sweeps (subprocesses), Ray",
    "test_sharing.py": "whole sweeps (subprocesses)",
    "test_sharing_container.py": "whole sweeps (subprocesses)",
    "test_workers.py": "whole sweeps (subprocesses)",
    "test_failing_runs.py": "whole sweeps (subprocesses)",
    "test_own_code.py": "whole sweeps (subprocesses)",
    "test_own_training.py": "whole sweeps (subprocesses)",
    "test_readonly_sweep.py": "whole sweeps (subprocesses)",
    "test_final_seeds.py": "whole sweeps (subprocesses)",
    "test_probe.py": "whole sweeps (subprocesses)",
    "test_executors.py": "Slurm and Ray clusters",
    "test_components.py": "fake streams and Ray",
    "test_pipeline_options.py": "in-process Keras training",
    "test_training.py": "in-process Keras training",
    "test_cascade.py": "in-process Keras training",
    "test_callbacks.py": "in-process Keras training",
    "test_report_scale.py": "analysis and report of synthetic sweeps",
    "test_analysis_report.py": "analysis and report of synthetic sweeps",
    "test_report_components.py": "analysis and report of synthetic sweeps",
    "test_intervals.py": "waiting on fake power streams",
    "test_meter.py": "waiting on fake power streams",
    "test_rapl.py": "waiting on fake power streams",
    "test_power_field.py": "waiting on fake power streams",
    "test_sources.py": "waiting on fake power streams",
    "test_gpu_check.py": "waiting on fake power streams",
}


def parse(log: Path) -> dict:
    """{"tests": {nodeid: seconds}, "passes": [(passed, wall_s)]} of one log."""
    tests: dict[str, float] = defaultdict(float)
    passes = []
    for line in log.read_text(errors="replace").splitlines():
        if m := LINE.match(line):
            tests[m.group(3)] += float(m.group(1))
        elif m := PASS.match(line):
            passes.append((int(m.group(1)), float(m.group(2))))
    return {"tests": dict(tests), "passes": passes}


def by(tests: dict[str, float], key) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for nodeid, seconds in tests.items():
        out[key(nodeid)] += seconds
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def file_of(nodeid: str) -> str:
    return nodeid.split("::")[0].rsplit("/", 1)[-1]


def kind_of(nodeid: str) -> str:
    return KIND.get(file_of(nodeid), "other (unit tests)")


def table(title: str, after: dict[str, float], before: dict[str, float] | None) -> list[str]:
    head = f"| {title} | seconds |" + (" before |" if before is not None else "")
    lines = [head, "|---|---|" + ("---|" if before is not None else "")]
    for name, seconds in after.items():
        row = f"| {name} | {seconds:.0f} |"
        if before is not None:
            row += f" {before.get(name, 0.0):.0f} |"
        lines.append(row)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--before", type=Path, default=None)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", default=None)
    parser.add_argument("--order", type=Path, default=None,
                        help="write {test: seconds} for tests/conftest.py's longest-first order")
    args = parser.parse_args()
    now = parse(args.log)
    then = parse(args.before) if args.before else None
    result = {"log": str(args.log), "passes": now["passes"],
              "total_s": round(sum(now["tests"].values()), 1),
              "by_kind": by(now["tests"], kind_of), "by_file": by(now["tests"], file_of),
              "slowest": dict(sorted(now["tests"].items(), key=lambda kv: -kv[1])[:args.top])}
    lines = table("what the tests wait on", result["by_kind"],
                  by(then["tests"], kind_of) if then else None)
    lines += [""] + table("test file", result["by_file"],
                          by(then["tests"], file_of) if then else None)
    lines += ["", f"workers' total: {result['total_s']:.0f} s"
              + (f" (before: {sum(then['tests'].values()):.0f} s)" if then else ""),
              f"passes (passed, wall s): {now['passes']}"]
    if then:
        result["before"] = {"log": str(args.before), "passes": then["passes"],
                            "total_s": round(sum(then["tests"].values()), 1)}
    print("\n".join(lines))
    print("\nslowest:\n" + "\n".join(f"{s:7.1f} s  {n}" for n, s in result["slowest"].items()))
    emit(result, args.out)
    if args.order:
        longest = {n: round(sec, 1) for n, sec in sorted(now["tests"].items()) if sec >= 1.0}
        args.order.write_text(json.dumps(longest, indent=0, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
