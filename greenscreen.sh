#!/usr/bin/env bash
# greenscreen: the one entry point.
#   ./greenscreen.sh                 set up if needed, then sweep, analyze, final, report
#   ./greenscreen.sh sweep [opts]    train the configurations of config.yaml, one folder each
#   ./greenscreen.sh analyze|final|report [opts]   one later stage (they read run folders)
#   ./greenscreen.sh check [opts]    validate config.yaml and exit
#   ./greenscreen.sh test [...]      run the test suite (extra arguments go to pytest)
#   ./greenscreen.sh meters          list the power sources this machine offers
# Options: --config FILE, --runs N, --epochs N, --sweep-dir DIR (defaults from config.yaml);
#   sweep: --workers N --gpus 0,1  or  --executor slurm|ray (README: "Scaling out").
# Set-up creates .venv/ and installs the project into it; it is redone only
# when setup.py or the Python version changes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="${GREENSCREEN_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
BASE_PYTHON="${PYTHON:-python3}"
export KERAS_BACKEND="${KERAS_BACKEND:-tensorflow}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

say() { printf 'greenscreen: %s\n' "$*"; }

setup_env() {
  local want
  want="$(sha256sum setup.py | cut -d' ' -f1) $("$BASE_PYTHON" --version 2>&1)"
  if [ -x "$PY" ] && [ "$(cat "$VENV/.greenscreen-stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  say "setting up $VENV (the first time installs TensorFlow: a few minutes)"
  if [ ! -x "$PY" ]; then
    "$BASE_PYTHON" -m venv "$VENV"
  fi
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$PY" -m pip install --quiet --disable-pip-version-check -e ".[pipeline,test]"
  echo "$want" > "$VENV/.greenscreen-stamp"
  say "environment ready"
}

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
  ""|--*) cmd=all ;;            # no command, or only options: the whole pipeline
  *) cmd="$1"; shift ;;
esac
case "$cmd" in
  test)
    setup_env
    exec "$PY" -m pytest "$@"
    ;;
  meters)
    setup_env
    exec "$PY" -c 'from greenscreen.meters import available
for row in available():
    state = "available" if row["available"] else "unavailable: " + row["reason"]
    print(f"{row[\"source\"]:<11} {row[\"provenance\"]:<22} {state}")'
    ;;
  sweep|analyze|final|report|check|all)
    setup_env
    exec "$PY" -m pipeline "$cmd" "$@"
    ;;
  -h|--help|help)
    usage
    ;;
  *)
    say "unknown command '$cmd'; allowed: sweep, analyze, final, report, check, test, meters, help (or none)" >&2
    exit 2
    ;;
esac
