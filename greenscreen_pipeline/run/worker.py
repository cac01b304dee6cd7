"""The warm worker: one long-lived process that trains runs one after another.

    python -m greenscreen_pipeline.run.worker --requests FD --replies FD --parent PID

The backend is imported once, when the worker starts, and a built-in dataset's splits once
per worker for runs that split it alike (`datacache`; your own dataset function is called
for every run).
Before each run the worker puts back the global
state a run may have changed (`reset`). It reads one `execute.Request` a line from the
requests pipe, trains that run exactly as a fresh run process would (`execute.train_one`),
and answers one JSON line on the replies pipe:

    {"index": 3, "code": 0, "rss_mb": 812.4, "gpu_mb": null, "retire": null}

A line `{"probe": {"config": ..., "runs": ..., "epochs": ...}}` asks instead for the probe
of your own code (`probe.py`) before the sweep's first run, in this process, so that the
sweep imports the backend once: the answer is `{"probe": {...what it found...}}`, or
`{"probe_error": "..."}` when the probe itself broke (the worker then retires).

It exits after answering when it should be replaced (`retire` says why): after a run that
failed or was interrupted (whatever broke may live on in the process; not after a loss
that became NaN, which our own check found in a sound process), and when its memory has
grown by more than `--max-growth-mb` since its first run. It also exits at the end of
the requests (the executor closed the pipe), on SIGTERM or SIGINT (a run in flight is
interrupted and resumes later), and when the process that started it dies.
"""

from __future__ import annotations

import faulthandler

from . import cpus, side_imports

# A crash in native code (your extension, a driver) writes this thread's Python stack to
# stderr, whose tail the executor keeps: the run's reason then names your frame (endings).
faulthandler.enable(all_threads=False)
cpus.pin()  # first: NumPy's BLAS threads start when the imports below load it
side_imports.leave_out()  # before Keras: TFLite and Keras import JAX and pyplot on the side

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

from . import execute, interrupt, ownership, reset  # noqa: E402

RETIRE_AFTER = {execute.FAILED: "its run failed", execute.INTERRUPTED: "its run was interrupted",
                execute.NO_SPACE: "its run was interrupted (disk full)"}


class Growth:
    """Memory since the worker's first run ended: past the bound, the worker retires."""

    def __init__(self, bound_mb: float) -> None:
        self.bound_mb = bound_mb
        self.first: tuple[float, float | None] | None = None

    def exceeded(self, rss: float, gpu: float | None) -> str | None:
        if self.first is None:
            self.first = (rss, gpu)
            return None
        grown = [("RSS", rss - self.first[0])]
        if gpu is not None and self.first[1] is not None:
            grown.append(("GPU memory", gpu - self.first[1]))
        for what, mb in grown:
            if not math.isnan(mb) and mb > self.bound_mb:
                return f"its {what} grew by {mb:.0f} MiB since its first run (bound " \
                       f"{self.bound_mb:.0f} MiB)"
        return None


def serve(requests, replies, bound_mb: float) -> int:
    """Trains each request read from `requests` until it ends or the worker retires."""
    state = reset.ProcessState()
    growth = Growth(bound_mb)
    config_dir = None  # the last run's: its modules are forgotten before the next
    while True:
        line = requests.readline()
        if not line:
            return 0
        began = time.time()
        asked = json.loads(line)
        if "probe" in asked:
            state.restore(config_dir)
            config_dir = os.path.dirname(os.path.abspath(asked["probe"]["config"]))
            before = reset.packages()
            reply = probe_reply(asked["probe"])
            retire = reset.retire_reason(before, state, config_dir)
            replies.write(json.dumps({**reply, **({"retire": retire} if retire else {})}) + "\n")
            replies.flush()
            if "probe_error" in reply or retire:
                return 0
            continue
        request = execute.Request(**asked)
        state.restore(config_dir)
        os.environ.update(request.environment)  # until the next run's restore
        reset.reset_keras()
        before = reset.packages()
        code = execute.train_one(request, began)
        config_dir = os.path.dirname(os.path.abspath(request.config))
        rss, gpu = reset.rss_mb(), reset.gpu_memory_mb()
        retire = RETIRE_AFTER.get(code) or stop_requested() \
            or reset.retire_reason(before, state, config_dir) \
            or growth.exceeded(rss, gpu)
        replies.write(json.dumps({"index": request.index, "code": code, "rss_mb": rss,
                                  "gpu_mb": gpu, "retire": retire}) + "\n")
        replies.flush()
        if retire:
            return 0


def stop_requested() -> str | None:
    """Why to retire after a run that ended although a stop was asked for (SIGTERM or
    SIGINT while it evaluated, its KeyboardInterrupt swallowed there): the stop was meant
    for this process, which trains no further run."""
    return f"a stop ({interrupt.requested[0]}) came during its run" \
        if interrupt.requested else None


def probe_reply(asked: dict) -> dict:
    """The probe's findings, or why it broke (a traceback's last lines)."""
    from .. import probe

    try:
        return {"probe": probe.result_of(asked["config"], asked["runs"], asked["epochs"])}
    except Exception:  # the probe's own failure, not a mistake it found
        return {"probe_error": " | ".join(traceback.format_exc().strip().splitlines()[-3:])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m greenscreen_pipeline.run.worker",
                                     description="Train runs one after another.")
    parser.add_argument("--requests", type=int, required=True, help="fd to read requests on")
    parser.add_argument("--replies", type=int, required=True, help="fd to answer on")
    parser.add_argument("--parent", type=int, default=None)
    parser.add_argument("--max-growth-mb", type=float, default=4096.0)
    args = parser.parse_args(argv)
    interrupt.install()
    if args.parent:
        ownership.die_with_parent(args.parent)
    try:
        import keras  # noqa: F401  the backend, once for every run of this worker

        # And the run path's own modules and packages (the seeding's wrapt, ...): a package
        # a run imports for the first time counts as that run's (reset.retire_reason).
        from . import training  # noqa: F401

        with contextlib.suppress(ImportError):  # what a run's meter imports, where installed
            import pynvml  # noqa: F401

        with os.fdopen(args.requests, "r", encoding="utf-8") as requests, \
                os.fdopen(args.replies, "w", encoding="utf-8") as replies:
            return serve(requests, replies, args.max_growth_mb)
    except KeyboardInterrupt:  # stopped while waiting for a run
        return execute.INTERRUPTED
    except BrokenPipeError:  # the executor is gone
        return execute.INTERRUPTED


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip the backend's interpreter teardown, as the run process does
