#!/usr/bin/env bash
# Prepares what the real-GPU check needs on the lent GPU machine (Python 3.12, with jax,
# nvidia-ml-py, numpy, pandas, scikit-learn, but no keras and no network): the keras wheel
# and its dependencies missing there, for Python 3.12 on x86-64, into .whl/ (git-ignored).
#
#   benchmarks/gpu_prepare.sh            # here, once
#   ./greenscreen.sh gpu-check           # there, with .whl carried along: installs the
#                                        # wheels into a temporary folder, then runs the check
set -euo pipefail
cd "$(dirname "$0")/.."
# The keras this checkout is tested with (its .venv), unless KERAS_VERSION says otherwise.
version_of_keras='from importlib.metadata import version; print(version("keras"))'
KERAS_VERSION="${KERAS_VERSION:-$(.venv/bin/python -c "$version_of_keras" 2>/dev/null \
  || python3 -c "$version_of_keras")}"
# keras's own requirements that the GPU image lacks (it has absl-py, numpy, rich, h5py,
# ml-dtypes and packaging).
PACKAGES=("keras==$KERAS_VERSION" namex optree)
rm -rf .whl && mkdir -p .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d .whl "${PACKAGES[@]}"
ls -1 .whl
echo "gpu_prepare: carry .whl to the GPU machine and run ./greenscreen.sh gpu-check there"
