"""The run process: trains one run into its folder in a fresh process, then exits.

    python -m greenscreen_pipeline.run --config config.yaml --sweep-dir sweeps/x --index 3

Runs are trained by warm workers (`worker.py`) unless `settings.isolate_runs` is true or
a run needs a process of its own (`execute.needs_own_process`): then an executor starts
this, one process per run, so the backend's state and GPU memory are released between
runs. The final run passes `--configuration JSON` and its own folder as `--sweep-dir`.
What happens inside is `execute.train_one`, the same as in a worker.
"""

from __future__ import annotations

import time

T_START = time.time()  # before the heavy imports: the pipeline-overhead benchmark needs it

import faulthandler  # noqa: E402

from . import cpus, side_imports  # noqa: E402

faulthandler.enable(all_threads=False)  # a native crash names your frame (as worker.py)
cpus.pin()  # before NumPy's BLAS and the backend start their threads (run/cpus.py)
side_imports.leave_out()  # before Keras: TFLite and Keras import JAX and pyplot on the side

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from . import interrupt, ownership  # noqa: E402
from .execute import Request, train_one  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m greenscreen_pipeline.run",
                                     description="Train one run into its folder.")
    parser.add_argument("--config", required=True)
    parser.add_argument("--sweep-dir", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None,
                        help="the sweep's runs as its executor has them (default: settings.runs)")
    parser.add_argument("--configuration", default=None,
                        help="train this configuration (JSON) instead of run INDEX's")
    parser.add_argument("--release", action="store_true",
                        help="at a halving rung its peers have not decided, park the run "
                             "(status parked) instead of waiting (the local executor)")
    parser.add_argument("--parent", type=int, default=None,
                        help="the pid of the process that started this one: this process "
                             "stops (as on SIGTERM) when it dies")
    args = parser.parse_args(argv)
    interrupt.install()
    if args.parent:
        ownership.die_with_parent(args.parent)
    request = Request(args.config, args.sweep_dir, args.index, args.epochs,
                      json.loads(args.configuration) if args.configuration else None,
                      release=args.release, runs=args.runs)
    return train_one(request, T_START)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every file is written and closed, and the meter is stopped: skip the backend's
    # interpreter teardown, which costs about a second per run.
    os._exit(code)
