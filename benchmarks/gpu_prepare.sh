#!/usr/bin/env bash
# Prepares what the real-GPU check needs on the lent GPU machine (Python 3.12 with jax,
# nvidia-ml-py, numpy, pandas, scikit-learn, but no keras and no network): keras and every
# package it requires, as wheels for Python 3.12 on x86-64, into .whl/ (git-ignored).
# Works on a fresh clone: no .venv and no keras needed here, only python3 with pip and
# the network.
#
#   benchmarks/gpu_prepare.sh            # here, once
#   benchmarks/gpu_prepare.sh --pipeline # also what a sweep needs beyond that machine's
#                                        # packages (benchmarks/gpu_warm_workers.sh)
#   ./greenscreen.sh gpu-check           # there, with .whl carried along: installs the
#                                        # wheels of the packages missing there into a
#                                        # temporary folder, then runs the check
#
# Which keras: $KERAS_VERSION if set; else the one this checkout's .venv is tested with;
# else pyproject.toml's requirement (an exact pin as it is, a lower bound as the newest
# Keras 3 above it).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "gpu_prepare: $*"; }

keras_requirement() {
  if [ -n "${KERAS_VERSION:-}" ]; then
    echo "keras==$KERAS_VERSION"
    say "keras $KERAS_VERSION from \$KERAS_VERSION" >&2
    return
  fi
  local tested
  if tested="$(.venv/bin/python -c 'from importlib.metadata import version; print(version("keras"))' 2>/dev/null)"; then
    echo "keras==$tested"
    say "keras $tested, the version .venv is tested with" >&2
    return
  fi
  # pyproject.toml: dependencies = ["keras>=3", ...]; the first keras requirement.
  local spec
  spec="$(grep -o '"keras[<>=!~ 0-9.,]*"' pyproject.toml | head -n 1 | tr -d '" ')"
  case "$spec" in
    keras==*) ;;
    keras*'<'*) ;;
    keras?*) spec="$spec,<4" ;;
    *) spec="keras>=3,<4" ;;
  esac
  echo "$spec"
  say "no .venv here: $spec (pyproject.toml's requirement; the newest release that meets it)" >&2
}

REQUIREMENTS=("$(keras_requirement)")
case "${1:-}" in
  --pipeline) REQUIREMENTS+=(pyyaml "optuna>=3.6" wrapt) ;;  # the sweep's, that machine lacks
  "") ;;
  *) say "unknown argument '$1'; the one option is --pipeline" >&2; exit 2 ;;
esac
rm -rf .whl && mkdir -p .whl
# With its requirements: what the GPU machine already has is skipped when installing there.
python3 -m pip download --quiet --only-binary=:all: --python-version 3.12 \
  --implementation cp --abi cp312 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d .whl "${REQUIREMENTS[@]}"
ls -1 .whl
say "$(du -sh .whl | cut -f1) in .whl; carry it to the GPU machine and run ./greenscreen.sh gpu-check there"
