#!/usr/bin/env bash
# greenscreen: the one entry point.
#   ./greenscreen.sh            set up if needed, then run the pipeline
#   ./greenscreen.sh test [...] run the test suite (extra arguments go to pytest)
#   ./greenscreen.sh meters     list the power sources this machine offers
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
  "$PY" -m pip install --quiet --disable-pip-version-check -e ".[test]"
  echo "$want" > "$VENV/.greenscreen-stamp"
  say "environment ready"
}

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
}

cmd="${1:-all}"
[ $# -gt 0 ] && shift
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
  all)
    setup_env
    say "the sweep pipeline is not built yet; it will: sample configurations from config.yaml,"
    say "train each in its own run folder, analyse them, retrain the best, and write report/*.pdf."
    say "available now: ./greenscreen.sh test, ./greenscreen.sh meters, and the library (see README.md)."
    ;;
  -h|--help|help)
    usage
    ;;
  *)
    say "unknown command '$cmd'; allowed: test, meters, help (or no argument for the pipeline)" >&2
    exit 2
    ;;
esac
