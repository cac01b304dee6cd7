"""Benchmark (not a test): a TensorFlow run process's start, with and without the JAX import
that TFLite and Keras's Orbax callback make on the side (greenscreen_pipeline/run/
jax_side_imports.py).

Each repeat starts two fresh processes, alternately, on KERAS_BACKEND=tensorflow: one
imports Keras as the worker did before, the other calls `jax_side_imports.leave_out()`
first, as the worker and the run process do now. Wall and CPU seconds (user + system) of
each, medians over the repeats. Needs JAX installed beside TensorFlow (otherwise there is
nothing to leave out).

Usage: python benchmarks/jax_side_imports.py [--repeats 7] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
KINDS = {
    "before": "import sys, keras; print('jax' in sys.modules)",
    "jax left out": ("import sys; from greenscreen_pipeline.run import jax_side_imports; "
                     "jax_side_imports.leave_out(); import keras; print('jax' in sys.modules)"),
}


def start_once(code: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "jax_imported": done.stdout.strip().splitlines()[-1] == "True"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    for _ in range(args.repeats):
        for kind, code in KINDS.items():
            runs[kind].append(start_once(code))
    medians = {kind: {"wall_s": statistics.median(r["wall_s"] for r in rs),
                      "cpu_s": statistics.median(r["cpu_s"] for r in rs),
                      "jax_imported": [r["jax_imported"] for r in rs]}
               for kind, rs in runs.items()}
    emit({"benchmark": "jax_side_imports", "date": time.strftime("%Y-%m-%d"),
          "python": sys.version.split()[0], "cpus": os.cpu_count(), "repeats": args.repeats,
          "medians": medians, "runs": runs}, args.out)


if __name__ == "__main__":
    main()
