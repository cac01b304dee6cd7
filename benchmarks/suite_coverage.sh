#!/usr/bin/env bash
# Benchmark (not a test): line coverage of greenscreen/ and greenscreen_pipeline/ over the
# whole suite, its three passes as ./greenscreen.sh test runs them, with every test's
# duration (pytest --durations=0). Subprocesses count too: coverage.py's `patch =
# subprocess` follows the sweeps, workers and run processes the tests start (a process
# killed with SIGKILL leaves no data, so the figure is a lower bound).
#
#   benchmarks/suite_coverage.sh [OUTDIR]     (default /tmp/greenscreen-coverage)
#
# Needs coverage.py >= 7.10 in .venv (.venv/bin/pip install coverage). Writes OUTDIR/
# {tf,jax,torch}.log, OUTDIR/coverage.txt and OUTDIR/summary (each pass's exit code and
# seconds, and the total line); benchmarks/suite_durations.py reads the logs.
set -uo pipefail
cd "$(dirname "$0")/.."
TREE="$PWD"; OUT="${1:-/tmp/greenscreen-coverage}"; PY="$TREE/.venv/bin/python"
rm -rf "$OUT"; mkdir -p "$OUT/cov"
cat > "$OUT/covrc" <<RC
[run]
source = greenscreen, greenscreen_pipeline
parallel = true
patch = subprocess
sigterm = true
data_file = $OUT/cov/.coverage
RC
export PYTHONPATH="$TREE${PYTHONPATH:+:$PYTHONPATH}"
run_pass() {  # name, then pytest's arguments
  local name="$1" began; shift; began=$(date +%s)
  "$PY" -m coverage run --rcfile="$OUT/covrc" -m pytest -n 2 --durations=0 \
    -p no:cacheprovider "$@" > "$OUT/$name.log" 2>&1
  echo "$name rc=$? $(( $(date +%s) - began ))s" >> "$OUT/summary"
}
began=$(date +%s)
KERAS_BACKEND=tensorflow run_pass tf
for backend in jax torch; do
  "$PY" -c "import $backend" 2>/dev/null || continue
  KERAS_BACKEND=$backend run_pass "$backend" -m "backends and not slow"
done
echo "total $(( $(date +%s) - began ))s" >> "$OUT/summary"
(cd "$OUT/cov" && "$PY" -m coverage combine --rcfile="$OUT/covrc" -q > "$OUT/combine.log" 2>&1)
"$PY" -m coverage report --rcfile="$OUT/covrc" > "$OUT/coverage.txt" 2>&1
tail -n 1 "$OUT/coverage.txt" >> "$OUT/summary"
cat "$OUT/summary"
