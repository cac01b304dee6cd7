#!/usr/bin/env bash
# greenscreen: set up .venv when needed, then run the `greenscreen` command in it.
# `test`, `setup` and `help` are this script's own words; everything else is
# `greenscreen`'s (greenscreen_pipeline/cli.py). The usage text is usage() below.
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

# includes HAVE WANT: whether the comma-separated list HAVE holds every item of WANT.
includes() {
  local item
  for item in ${2//,/ }; do
    case ",$1," in *",$item,"*) ;; *) return 1 ;; esac
  done
}

# setup_env EXTRAS: .venv with the project and the extras (comma-separated) installed.
# constraints.txt holds the versions kept there (and why). The stamp records
# pyproject.toml's and constraints.txt's hash, the Python version and the extras installed;
# extras add up (`test` installs jax beside tensorflow, and a later `meters`, which needs
# only tensorflow, does not install again).
setup_env() {
  local extras="pipeline,test,$1" base stamp had
  base="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1) $("$BASE_PYTHON" --version 2>&1)"
  stamp="$(cat "$VENV/.greenscreen-stamp" 2>/dev/null || true)"
  if [ -x "$PY" ] && [ "${stamp% \[*}" = "$base" ]; then
    had="${stamp##*\[}"
    had="${had%\]}"
    if includes "$had" "$extras"; then
      return 0
    fi
    extras="$(printf '%s\n' ${had//,/ } ${extras//,/ } | awk '!seen[$0]++' | paste -sd, -)"
  fi
  say "setting up $VENV with [$extras] (the first time installs the backend: a few minutes)"
  if [ ! -x "$PY" ]; then
    "$BASE_PYTHON" -m venv "$VENV"
  fi
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$PY" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[$extras]"
  echo "$base [$extras]" > "$VENV/.greenscreen-stamp"
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
  # One test at a time to each worker (after two each): tests/conftest.py starts the
  # longest first, and xdist's default first hands each worker a quarter of its share in
  # one contiguous chunk, which would give one worker all the longest tests.
  echo "-n $n --maxschedchunk 1"
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
  cat <<'USAGE'
greenscreen: energy-aware sweeps for Keras 3.

  ./greenscreen.sh                  set up if needed, then sweep, analyze, final and report
  ./greenscreen.sh sweep [EXECUTOR] [opts]
                                    train config.yaml's runs, one folder each; EXECUTOR is
                                    local (default: --workers N --gpus 0,1), slurm or ray
  ./greenscreen.sh analyze|final|report [opts]   one later stage (they read run folders)
  ./greenscreen.sh check [opts]     validate config.yaml and exit
  ./greenscreen.sh run-one --index N | --share K/N
                                    claim and train one run, or runs K, K+N, ... in one
                                    warm worker (what a Slurm array task does)
  ./greenscreen.sh status [opts]    where a sweep stands (runs, failures, energy, budget);
                                    starts nothing, so ask it while the sweep trains
  ./greenscreen.sh meters           list the power sources this machine offers
  ./greenscreen.sh gpu-check [...]  every power source against NVML's counter on a real GPU
                                    (benchmarks/gpu_prepare.sh first, on a machine with pip)
  ./greenscreen.sh test [...]       the test suite under TensorFlow, then its backend tests
                                    under JAX (and PyTorch, if installed); arguments: one
                                    pytest run
  ./greenscreen.sh setup [test]     only set up .venv (for the tests: both backends)
  ./greenscreen.sh help             this text; './greenscreen.sh COMMAND --help' for a command's

Options of the stages: --config FILE, --sweep-dir DIR, and for those that train (and
status) --runs N, --epochs N (defaults from config.yaml). Set-up creates .venv/ and installs the project into it with the Keras backend
KERAS_BACKEND names (tensorflow, the default, jax or torch); it is redone only when
pyproject.toml, the Python version or the backends needed change. Inside .venv, the same
command is `greenscreen` (pip install ".[pipeline,tensorflow]" gives it anywhere).
USAGE
}

# gpu-check on a lent GPU machine: no .venv and no network, but the wheels that
# benchmarks/gpu_prepare.sh put in .whl/ (keras and its requirements) are installed into
# a temporary folder, those of packages the machine lacks only.
gpu_check() {
  local python="$BASE_PYTHON" whl missing=()
  if [ -x "$PY" ]; then
    python="$PY"
  elif ! "$python" -c 'import keras' 2>/dev/null; then
    [ -d .whl ] || { say "keras is missing: run benchmarks/gpu_prepare.sh and carry .whl" >&2; exit 2; }
    for whl in .whl/*.whl; do
      "$python" -c 'import sys, importlib.metadata as m; m.version(sys.argv[1])' \
        "$(basename "$whl" | cut -d- -f1)" 2>/dev/null || missing+=("$whl")
    done
    say "installing ${#missing[@]} wheels from .whl into /tmp/greenscreen-site: ${missing[*]##*/}"
    "$python" -m pip install -q --no-index --no-deps --no-compile --upgrade \
      --target /tmp/greenscreen-site "${missing[@]}"
    export PYTHONPATH="/tmp/greenscreen-site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m greenscreen_pipeline gpu-check "$@"
}

case "${1:-}" in
  -h|--help|help)
    usage
    exit 0
    ;;
  test)
    shift
    setup_env tensorflow,jax
    if [ $# -gt 0 ]; then
      exec "$PY" -m pytest "$@"
    fi
    run_tests
    ;;
  setup)
    if [ "${2:-}" = test ]; then setup_env tensorflow,jax; else setup_env "$KERAS_BACKEND"; fi
    ;;
  gpu-check)
    shift
    gpu_check "$@"
    ;;
  ""|-*)  # no command, or only options: the whole pipeline
    setup_env "$KERAS_BACKEND"
    exec "$VENV/bin/greenscreen" all "$@"
    ;;
  *)
    setup_env "$KERAS_BACKEND"
    exec "$VENV/bin/greenscreen" "$@"
    ;;
esac
