"""Benchmark (not a test): what a run process's start costs in imports the run never uses.

Two comparisons, each of fresh processes on KERAS_BACKEND=tensorflow (or --backend), side
by side and alternating, CPU seconds (user + system) and wall seconds, medians over the
repeats:

- **side imports**: `import keras` as the worker did before, against
  `side_imports.leave_out()` first, as the worker and the run process do now
  (greenscreen_pipeline/run/side_imports.py: JAX and matplotlib's pyplot left out of the
  modules that import them on the side). Says which of the two packages each loaded.
- **ml_dtypes versions** (`--ml-dtypes 0.6.0 0.7.0`): each version is installed with pip
  into a folder of its own (`pip install --no-deps --target`, from the index pip is set up
  for), put first on PYTHONPATH, and `side_imports.leave_out(); import keras` is timed
  with it. NumPy's dtypes extension registers its types when imported; 0.7.0's took about
  1.3 s on the 2-core VM (RESULTS.md).

Usage: python benchmarks/side_imports.py [--repeats 7] [--ml-dtypes 0.6.0 0.7.0] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
SEEN = "import sys, ml_dtypes; print(ml_dtypes.__version__, 'jax' in sys.modules, " \
       "'matplotlib' in sys.modules)"
BEFORE = f"import keras; {SEEN}"
LEFT_OUT = ("from greenscreen_pipeline.run import side_imports; side_imports.leave_out(); "
            f"import keras; {SEEN}")


def start_once(code: str, backend: str, pythonpath: str | None = None) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    version, jax, matplotlib = done.stdout.strip().splitlines()[-1].split()
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "ml_dtypes": version,
            "jax_imported": jax == "True", "matplotlib_imported": matplotlib == "True"}


def install_ml_dtypes(version: str, into: Path) -> str:
    folder = into / f"ml_dtypes-{version}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "--target", str(folder),
                    f"ml_dtypes=={version}"], check=True)
    return str(folder)


def medians(runs: list[dict]) -> dict:
    return {"wall_s": statistics.median(r["wall_s"] for r in runs),
            "cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "ml_dtypes": sorted({r["ml_dtypes"] for r in runs}),
            "jax_imported": [r["jax_imported"] for r in runs],
            "matplotlib_imported": [r["matplotlib_imported"] for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax"))
    parser.add_argument("--ml-dtypes", nargs="*", default=[], metavar="VERSION")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kinds = {"before": (BEFORE, None), "left out": (LEFT_OUT, None)}
        for version in args.ml_dtypes:
            kinds[f"left out, ml_dtypes {version}"] = (
                LEFT_OUT, install_ml_dtypes(version, Path(tmp)))
        runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for _ in range(args.repeats):
            for kind, (code, pythonpath) in kinds.items():
                runs[kind].append(start_once(code, args.backend, pythonpath))
    emit({"benchmark": "side_imports", "date": time.strftime("%Y-%m-%d"),
          "python": sys.version.split()[0], "cpus": os.cpu_count(), "backend": args.backend,
          "repeats": args.repeats, "medians": {k: medians(r) for k, r in runs.items()},
          "runs": runs}, args.out)


if __name__ == "__main__":
    main()
