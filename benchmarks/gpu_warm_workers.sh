#!/usr/bin/env bash
# Issue 31 on the lent GPU machine: warm workers against a fresh process per run, and the
# JAX compilation cache, on the GPU (benchmarks/warm_workers.py, KERAS_BACKEND=jax).
# There: Python 3.12 with jax, numpy, pandas, scikit-learn and nvidia-ml-py, no keras and no
# network. Here, first: benchmarks/gpu_prepare.sh --pipeline (keras's wheels and the sweep's
# own requirements), and carry .whl.
#
#   OUT=/some/folder benchmarks/gpu_warm_workers.sh     # there; every result lands in $OUT
#   OUT=... benchmarks/gpu_warm_workers.sh isolated-default   # that sweep's isolated half alone
#   OUT=... benchmarks/gpu_warm_workers.sh default   # the default sweep, warm then isolated, alone
#   OUT=... benchmarks/gpu_warm_workers.sh memory    # one worker's RSS and GPU memory over 20 runs
#   OUT=... benchmarks/gpu_warm_workers.sh halves    # the default sweep, warm then isolated, as
#                                                    # two steps with a JSON each (one device call)
#
# Three steps, each under its own time limit so that one device call holds them all, the
# smallest first: a 4-run x 2-epoch default sweep, warm and isolated; the cache; then the
# default sweep itself (8 runs x 3 epochs), warm and isolated.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu_warm_workers}"
mkdir -p "$OUT"
missing=()
for whl in .whl/*.whl; do
  python3 -c 'import sys, importlib.metadata as m; m.version(sys.argv[1])' \
    "$(basename "$whl" | cut -d- -f1)" 2>/dev/null || missing+=("$whl")
done
echo "installing ${#missing[@]} wheels: ${missing[*]##*/}"
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade \
  --target /tmp/greenscreen-site "${missing[@]}"
export PYTHONPATH="/tmp/greenscreen-site:$PWD"
export KERAS_BACKEND=jax
{
  nvidia-smi --query-gpu=name,driver_version,power.limit,pstate --format=csv
  python3 -c 'import sys, jax, keras, optuna, wrapt; print(sys.version.split()[0], "jax", jax.__version__, "keras", keras.__version__, "optuna", optuna.__version__, jax.devices())'
  nproc
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
step() {  # step NAME SECONDS ARGS...: one warm_workers.py measurement, its log and JSON in $OUT
  local name="$1" seconds="$2"; shift 2
  local began=$SECONDS
  timeout "$seconds" python3 benchmarks/warm_workers.py --repeats 1 "$@" \
    --out "$OUT/$name.json" > "$OUT/$name.log" 2>&1
  echo "$name: rc $? in $((SECONDS - began)) s"
  tail -n 5 "$OUT/$name.log"
}
if [ "${1:-}" = isolated-default ]; then  # the default sweep's isolated half alone
  step overhead_default_isolated 290 --only overhead --modes isolated
  exit
fi
if [ "${1:-}" = memory ]; then  # 20 runs x 1 epoch, each compiled afresh: about 8 minutes
  step memory 560 --only memory --memory-runs 20
  exit
fi
if [ "${1:-}" = default ]; then  # the default sweep alone, both halves side by side
  step overhead_default 440 --only overhead
  exit
fi
if [ "${1:-}" = halves ]; then  # the default sweep's halves one after the other, each with
  # its own time limit and JSON, so that a cut isolated half leaves the warm half's figures
  # (with its worker's memory after each run): two warm halves took 155-214 s on an H200,
  # two isolated 266-272 s; about 580 s in all, with the wheels' install
  step overhead_default_warm 250 --only overhead --modes warm
  step overhead_default_isolated 310 --only overhead --modes isolated
  exit
fi
step overhead_4x2 200 --only overhead --runs 4 --epochs 2
step cache 130 --only cache
step overhead_default 200 --only overhead
