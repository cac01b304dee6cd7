"""The executor's side of a warm worker (`run/worker.py`): start it, send it runs, read
its answers, replace it when it retires or dies.

One `WorkerSlot` belongs to one executor slot (a local worker thread, a Ray actor, a Slurm
array task) and is used by that slot only. Its worker's stderr goes to a temporary file;
the part written while a run trained is that attempt's stderr tail in attempts.jsonl, as
a fresh run process's would be.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from .. import endings
from ..errors import UsageError
from ..log import logger
from ..run import caches
from ..run.execute import INTERRUPTED, Request
from .stop import Stop, send

log = logger(__name__)

TAIL_LINES = 15
TAIL_BYTES = 64 * 1024


@dataclass
class Ending:
    """How one attempt ended, filled in as it ends (also when the executor is stopped
    meanwhile): its exit code, a negative signal number if its process died, the stderr
    written meanwhile, and why its worker retired, if it did."""

    code: int = -9
    stderr_tail: str = ""
    retired: str | None = None
    rss_mb: float | None = None
    gpu_mb: float | None = None  # the worker's GPU memory where visible (NVML), else None
    worker_pid: int | None = None

    def worker(self) -> dict | None:
        """The warm worker's pid and memory after the run, for attempts.jsonl; None when
        no worker answered (a process of its own, or a worker that died)."""
        if self.rss_mb is None:
            return None
        return {"pid": self.worker_pid, "rss_mb": self.rss_mb, "gpu_mb": self.gpu_mb}


class WorkerSlot:
    """A warm worker process, started on the first run and replaced when it retires.

    Args:
        env: The worker's environment (None: this process's).
        max_growth_mb: The memory growth after which the worker retires.
    """

    def __init__(self, env: dict | None = None, max_growth_mb: float = 4096.0) -> None:
        self.env = env
        self.max_growth_mb = max_growth_mb
        self.proc: subprocess.Popen | None = None
        self.started = 0  # worker processes started, for the tests and the log
        self._log = tempfile.TemporaryFile()
        self._requests = self._replies = None

    def train(self, request: Request, stop: Stop, ending: Ending | None = None) -> Ending:
        """Trains `request` in the worker (starting one if none is alive); fills in and
        returns `ending`."""
        ending = ending if ending is not None else Ending()
        if self.proc is None or self.proc.poll() is not None:
            cache = caches.folder_of(request.sweep_dir, request.configuration is not None)
            self._start(caches.environment(cache, self.env))
        start = os.fstat(self._log.fileno()).st_size
        stop.add(self.proc)
        line = ""
        try:
            self._requests.write(request.to_json() + "\n")
            self._requests.flush()
            line = self._replies.readline()
        except BrokenPipeError:
            pass
        except BaseException:  # a cancelled Ray task: stop the run as a sweep's stop does
            send(self.proc, signal.SIGTERM)
            ending.code = self._forget() or INTERRUPTED
            raise
        finally:
            stop.discard(self.proc)
            ending.stderr_tail = self._tail(start)
        if not line:  # the worker died with its run (SIGKILL, the OOM killer, a signal)
            code = self._forget()
            ending.code, ending.retired = (code if code is not None else -9), "it died"
            ending.stderr_tail = self._tail(start)  # all of it, now that it has ended
            return ending
        reply = json.loads(line)
        ending.code, ending.retired = int(reply["code"]), reply.get("retire")
        ending.rss_mb, ending.gpu_mb = reply.get("rss_mb"), reply.get("gpu_mb")
        ending.worker_pid = self.proc.pid
        if ending.retired:
            log.debug("worker %d retires: %s", self.proc.pid, ending.retired)
            self.close()
        return ending

    def start(self, sweep_dir: str) -> None:
        """Starts the worker now, in this thread, if none is alive. On Linux a worker ends
        with the thread that started it (PR_SET_PDEATHSIG), so a worker meant to outlive a
        sweep's slot threads (`all` trains the final runs in it) starts here."""
        if self.proc is None or self.proc.poll() is not None:
            self._start(caches.environment(caches.folder_of(sweep_dir, False), self.env))

    def probe(self, config: str, sweep_dir: str, runs: int, epochs: int) -> dict:
        """The probe of your own code (`probe.py`) in this slot's worker, before its first
        run, so that the sweep imports the backend once; returns what the probe found.

        Raises:
            UsageError: the probe broke, or the worker died, without a result.
        """
        self.start(sweep_dir)
        start = os.fstat(self._log.fileno()).st_size
        asked = {"config": config, "runs": runs, "epochs": epochs}
        try:
            self._requests.write(json.dumps({"probe": asked}) + "\n")
            self._requests.flush()
            reply = json.loads(self._replies.readline() or "{}")
        except (BrokenPipeError, json.JSONDecodeError):
            reply = {}
        if "probe" in reply:
            if reply.get("retire"):  # your code changed process-wide settings: a new worker
                self.close()
            return reply["probe"]
        why = reply.get("probe_error") or " | ".join(self._tail(start).splitlines()[-3:])
        self.close()
        raise UsageError(f"the probe of your code ended without a result: "
                         f"{why or 'no output'}; --no-probe skips it")

    def close(self, timeout: float = 60.0) -> None:
        """Ends the worker: the end of its requests, then SIGKILL if it does not go."""
        if self.proc is None:
            return
        try:
            self._requests.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._forget()

    def _start(self, extra_env: dict[str, str]) -> None:
        self._forget()
        env = {**(self.env if self.env is not None else os.environ), **extra_env}
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        cmd = [sys.executable, "-m", "greenscreen_pipeline.run.worker", "--requests",
               str(req_r), "--replies", str(rep_w), "--parent", str(os.getpid()),
               "--max-growth-mb", str(self.max_growth_mb)]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=self._log,
                                         env=env, pass_fds=(req_r, rep_w))
        finally:
            os.close(req_r)  # the worker's ends: its exit then closes the pipes
            os.close(rep_w)
        self._requests = os.fdopen(req_w, "w", encoding="utf-8")
        self._replies = os.fdopen(rep_r, "r", encoding="utf-8")
        self.started += 1

    def _forget(self) -> int | None:
        """Waits for a worker that is ending and drops it; returns its exit code."""
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
        for pipe in (self._requests, self._replies):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        self.proc, self._requests, self._replies = None, None, None
        return code

    def _tail(self, start: int) -> str:
        fd = self._log.fileno()
        end = os.fstat(fd).st_size
        begin = max(start, end - TAIL_BYTES)
        text = os.pread(fd, end - begin, begin).decode("utf-8", "replace")
        return endings.tail(text, TAIL_LINES)
