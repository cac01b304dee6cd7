#!/usr/bin/env bash
# greenscreen: the one entry point.
#   ./greenscreen.sh                 set up if needed, then sweep, analyze, final, report
#   ./greenscreen.sh sweep [opts]    train the configurations of config.yaml, one folder each
#   ./greenscreen.sh analyze|final|report [opts]   one later stage (they read run folders)
#   ./greenscreen.sh check [opts]    validate config.yaml and exit
#   ./greenscreen.sh test [...]      run the test suite under TensorFlow, then its backend tests
#                                    under JAX (and PyTorch, if installed); arguments: one pytest run
#   ./greenscreen.sh meters          list the power sources this machine offers
#   ./greenscreen.sh setup [test]    only set up .venv (for the tests: both backends they need)
#   ./greenscreen.sh gpu-check [...] every power source against NVML's counter on a real GPU
#                                    (benchmarks/gpu_check.py; benchmarks/gpu_prepare.sh first)
# Options: --config FILE, --runs N, --epochs N, --sweep-dir DIR (defaults from config.yaml);
#   sweep: --workers N --gpus 0,1  or  --executor slurm|ray (README: "Scaling out").
# Set-up creates .venv/ and installs the project into it with the Keras backend
# KERAS_BACKEND names (tensorflow, the default, jax or torch); it is redone only
# when setup.py, the Python version or the backends needed change.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="${GREENSCREEN_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
BASE_PYTHON="${PYTHON:-python3}"
export KERAS_BACKEND="${KERAS_BACKEND:-tensorflow}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

say() { printf 'greenscreen: %s\n' "$*"; }

case "$KERAS_BACKEND" in
  tensorflow|jax|torch) ;;
  *) say "KERAS_BACKEND='$KERAS_BACKEND' is not valid; allowed: tensorflow, jax, torch" >&2
     exit 2 ;;
esac

# setup_env EXTRAS: .venv with the project and the extras (comma-separated) installed.
setup_env() {
  local extras="pipeline,test,$1" want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1) $("$BASE_PYTHON" --version 2>&1) [$extras]"
  if [ -x "$PY" ] && [ "$(cat "$VENV/.greenscreen-stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  say "setting up $VENV with [$extras] (the first time installs the backend: a few minutes)"
  if [ ! -x "$PY" ]; then
    "$BASE_PYTHON" -m venv "$VENV"
  fi
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$PY" -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
  echo "$want" > "$VENV/.greenscreen-stamp"
  say "environment ready"
}

# The whole suite under TensorFlow, then the tests marked `backends` (callbacks on
# every backend, training methods on TensorFlow and JAX) under the other backends.
# The tests run in parallel (pytest-xdist), one worker per CPU up to 4: most of them
# wait on subprocesses (runs, sweeps, Slurm, Ray) or on one core. GREENSCREEN_TEST_WORKERS
# sets the number; 0 runs them in this process, one after another.
test_workers() {
  local n="${GREENSCREEN_TEST_WORKERS:-}"
  if [ -z "$n" ]; then
    n="$(nproc 2>/dev/null || echo 1)"
    [ "$n" -gt 4 ] && n=4
  fi
  case "$n" in
    ''|*[!0-9]*) say "GREENSCREEN_TEST_WORKERS='$n' is not valid; allowed: an integer >= 0" >&2
                 exit 2 ;;
  esac
  if [ "$n" -le 1 ] && [ -z "${GREENSCREEN_TEST_WORKERS:-}" ]; then n=0; fi
  echo "-n $n"
}

run_tests() {
  local failed=0 backend workers
  workers="$(test_workers)" || exit 2
  # shellcheck disable=SC2086  # two words: -n N
  KERAS_BACKEND=tensorflow "$PY" -m pytest $workers || failed=1
  for backend in jax torch; do
    if ! "$PY" -c "import $backend" 2>/dev/null; then
      say "backend tests under $backend skipped: $backend is not installed in $VENV" \
          "(.venv/bin/pip install $backend)"
      continue
    fi
    say "backend tests under KERAS_BACKEND=$backend"
    # shellcheck disable=SC2086
    KERAS_BACKEND=$backend "$PY" -m pytest $workers -m "backends and not slow" || failed=1
  done
  return "$failed"
}

usage() {
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
  ""|--*) cmd=all ;;            # no command, or only options: the whole pipeline
  *) cmd="$1"; shift ;;
esac
case "$cmd" in
  test)
    setup_env tensorflow,jax
    if [ $# -gt 0 ]; then
      exec "$PY" -m pytest "$@"
    fi
    run_tests
    ;;
  setup)
    if [ "${1:-}" = test ]; then setup_env tensorflow,jax; else setup_env "$KERAS_BACKEND"; fi
    ;;
  gpu-check)
    # The GPU machines have jax but no keras and no network: wheels prepared by
    # benchmarks/gpu_prepare.sh in .whl/ are installed into a temporary folder.
    if [ -x "$PY" ]; then
      checker="$PY"
    else
      checker="$BASE_PYTHON"
      if ! "$checker" -c 'import keras' 2>/dev/null; then
        [ -d .whl ] || { say "keras is missing: run benchmarks/gpu_prepare.sh and carry .whl" >&2; exit 2; }
        "$checker" -m pip install -q --no-index --no-deps --no-compile --target /tmp/greenscreen-site .whl/*.whl
        export PYTHONPATH="/tmp/greenscreen-site${PYTHONPATH:+:$PYTHONPATH}"
      fi
    fi
    KERAS_BACKEND=jax exec "$checker" benchmarks/gpu_check.py "$@"
    ;;
  meters)
    setup_env "$KERAS_BACKEND"
    exec "$PY" -c 'from greenscreen.meters import available
for row in available():
    state = "available" if row["available"] else "unavailable: " + row["reason"]
    print(f"{row[\"source\"]:<11} {row[\"provenance\"]:<22} {state}")'
    ;;
  sweep|analyze|final|report|check|all)
    setup_env "$KERAS_BACKEND"
    exec "$PY" -m greenscreen_pipeline "$cmd" "$@"
    ;;
  -h|--help|help)
    usage
    ;;
  *)
    say "unknown command '$cmd'; allowed: sweep, analyze, final, report, check, test, meters, setup, gpu-check, help (or none)" >&2
    exit 2
    ;;
esac
