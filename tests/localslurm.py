"""A real single-node Slurm cluster on 127.0.0.1, started and stopped by a test.

It runs munged, slurmctld and slurmd from the Debian packages `slurm-wlm` and
`munge` with a private key, socket, state and configuration in a temporary
folder: nothing under /etc is read or changed. The node offers two GPUs as
Slurm GRES backed by /dev/null and /dev/zero (Slurm drops GPUs without device
files), so `--gres=gpu:1` jobs run and Slurm sets CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel")


class Unavailable(Exception):
    """Slurm cannot run here; the message is the exact reason."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gs-slurm-"))  # short: socket paths are limited
        self.conf = self.dir / "slurm.conf"
        self.procs: list[subprocess.Popen] = []

    @property
    def env(self) -> dict:
        """This process's environment, pointed at this cluster (sbatch passes it to jobs)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> "LocalSlurm":
        missing = [p for p in PROGRAMS if shutil.which(p) is None]
        if missing:
            raise Unavailable(f"not installed: {', '.join(missing)} (Debian: apt-get install "
                              "slurm-wlm munge)")
        os.chmod(self.dir, 0o755)  # munged wants its socket folder searchable by all
        self._write_config()
        sock = self.dir / "munge.sock"
        self._daemon(["munged", "--foreground", "--force", f"--socket={sock}",
                      f"--key-file={self.dir / 'munge.key'}", f"--pid-file={self.dir / 'm.pid'}",
                      f"--log-file={self.dir / 'munged.log'}",
                      f"--seed-file={self.dir / 'munged.seed'}"], "munged.out")
        self._wait(lambda: sock.exists(), "munged did not create its socket", "munged.out")
        self._daemon(["slurmctld", "-D", "-c", "-f", str(self.conf)], "slurmctld.out")
        self._daemon(["slurmd", "-D", "-f", str(self.conf), "-N", self.node], "slurmd.out")
        self._wait(lambda: self.node_state() == "idle",
                   "the node did not become idle", "slurmctld.log")
        return self

    def _write_config(self) -> None:
        key = self.dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.node, user, d = socket.gethostname(), getpass.getuser(), self.dir
        (d / "state").mkdir()
        (d / "spool").mkdir()
        (d / "gres.conf").write_text("Name=gpu File=/dev/null\nName=gpu File=/dev/zero\n")
        self.conf.write_text("\n".join([
            "ClusterName=greenscreen-test",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge", f"AuthInfo=socket={d / 'munge.sock'}", "CredType=cred/munge",
            f"SlurmUser={user}", f"SlurmdUser={user}",
            f"StateSaveLocation={d / 'state'}", f"SlurmdSpoolDir={d / 'spool'}",
            f"SlurmctldPidFile={d / 'ctld.pid'}", f"SlurmdPidFile={d / 'd.pid'}",
            f"SlurmctldLogFile={d / 'slurmctld.log'}", f"SlurmdLogFile={d / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
            "MpiDefault=none", "SchedulerType=sched/backfill", "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core", "ReturnToService=2", "GresTypes=gpu",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} Gres=gpu:2 "
            "State=UNKNOWN",
            f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP", ""]))

    def _daemon(self, cmd: list[str], log: str) -> None:
        out = open(self.dir / log, "w")
        self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=out,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        out.close()

    def _wait(self, ready, what: str, log: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if ready():
                return
            dead = [p.args[0] for p in self.procs if p.poll() is not None]
            if dead:
                what = f"{', '.join(dead)} exited"
                break
            time.sleep(0.5)
        tail = " | ".join(self.log(log).strip().splitlines()[-5:])
        raise Unavailable(f"{what} within {timeout:.0f} s; {log}: {tail}")

    def log(self, name: str) -> str:
        try:
            return (self.dir / name).read_text(errors="replace")
        except OSError:
            return "(no log)"

    def run(self, *cmd: str) -> str:
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
        return done.stdout.strip()

    def node_state(self) -> str:
        return self.run("sinfo", "-h", "-n", self.node, "-o", "%T")

    def job_state(self, job: str) -> str:
        """COMPLETED, FAILED, RUNNING ... of a job (the last task's, for an array)."""
        fields = self.run("scontrol", "-o", "show", "job", job).split()
        states = [f.split("=", 1)[1] for f in fields if f.startswith("JobState=")]
        return states[-1] if states else ""

    def wait_idle(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while self.run("squeue", "-h", "-o", "%i") and time.time() < deadline:
            time.sleep(1)
        if self.run("squeue", "-h", "-o", "%i"):
            raise AssertionError(f"jobs still queued after {timeout:.0f} s:\n"
                                 + self.run("squeue"))

    def stop(self) -> None:
        if shutil.which("scancel") and all(p.poll() is None for p in self.procs):
            try:
                subprocess.run(["scancel", "--user", getpass.getuser()], env=self.env,
                               capture_output=True, timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
