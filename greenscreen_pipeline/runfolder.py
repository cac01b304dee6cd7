"""The run folder: one owner for every file of a run, and the one reader of them.

    parameters.yaml  every value of the configuration, versions, test metrics (the run process)
    logs.csv         one row per epoch, continued on resume                   (its SMICallback)
    summary.json     energy totals over every attempt, provenance (RunSummary) (its SMICallback)
    results.json     test metrics, timing, the Keras history (RunResults)    (the run process)
    status.json      pending | running | done | stopped | failed | skipped | interrupted
                     (the run process; running -> failed or interrupted where it died
                     without saying, by its executor: `executors.attempt.settle_status`)
    configuration.json  a pareto search's proposal, written before it trains (the executor)
    rungs/NNNN.json  the run's figures at each halving rung             (the run process)
    rungs/NNNN.decided.json  what that rung decided for it, once made   (the run process)
    attempts.jsonl   one line when an attempt starts and one when it ends     (the executor)
    output.log       what the run printed (standard output), every attempt's (the run process)
    checkpoint/      the last finished epoch, until the run is done     (Keras BackupAndRestore)

Each file has one writer, named on its right; every stage reads runs through
`RunFolder`. Reading tells apart a file that is *absent* from one that is
*unreadable* (a directory in its place, EIO, ESTALE, half a JSON document):
an unreadable file raises `Unreadable` naming it, and nothing here deletes or
overwrites a folder it could not read. The original pipeline's folders (no
summary.json nor status.json; `gpu_power_W`-style columns) are translated here, and only
here: done where the original finished them, else skipped; never written to.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from greenscreen.fileio import atomic_write_json, atomic_write_text
from greenscreen.validation import invalid

from . import endings
from .processes import process_start, recorded_alive
from .records import RunResults, RunSummary

# stopped: halving ended it at a rung (not failed, not done); it is never trained again.
FINAL = ("done", "stopped", "failed", "skipped")
CONFIGURATION = "configuration.json"
# parked: waiting at a halving rung with its worker given back (search/rung_callback.py);
# it resumes from its checkpoint, like an interrupted run, once the rung is decided.
STATES = ("pending", "running", "interrupted", "parked") + FINAL
BUSY_EXIT = 73  # run.execute.BUSY: another process held the run's lock; nothing was trained
# The original pipeline's logs.csv columns, and ours.
SEED_COLUMNS = {"gpu_power_W": "power_w", "gpu_temp_C": "gpu_temp_c", "gpu_util_%": "gpu_util_pct"}
SEED_UNFINISHED = ("the original pipeline's run did not finish: its parameters.yaml has no "
                   "test metric; greenscreen does not train or resume a folder of that format")


class Unreadable(RuntimeError):
    """A file of a run folder exists but cannot be read; the folder is left as it is."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path} cannot be read ({why}); the run folder is left untouched: "
                         "fix or move that file, then run the same command again")
        self.path = path


@dataclass
class Read:
    """One file read: kind is "absent", "unreadable" or "valid"."""

    kind: str
    value: object = None
    why: str = ""


def read_file(path: Path, parse) -> Read:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Read("absent")
    except (OSError, UnicodeDecodeError) as exc:  # a directory, EIO, ESTALE, EACCES, ...
        return Read("unreadable", why=f"{type(exc).__name__}: {exc}")
    try:
        return Read("valid", parse(text))
    except Exception as exc:
        return Read("unreadable", why=f"not valid: {type(exc).__name__}: {exc}")


def _json_object(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _yaml_params(text: str) -> dict:
    # The original pipeline writes "seed : 22"; YAML reads that as the key "seed".
    # libyaml's safe loader where installed: the same values, 5x faster at 1000 runs.
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}


def run_name(index: int) -> str:
    """Run `index`'s folder name: "007", "1234"."""
    return f"{index:03d}"


def run_dir(sweep_dir: "str | Path", index: int) -> Path:
    return Path(sweep_dir) / run_name(index)


class RunFolder:
    """One run's folder. Readers raise `Unreadable`; writers belong to one owner each."""

    def __init__(self, path: "str | Path") -> None:
        self.path = Path(path)

    @classmethod
    def of(cls, sweep_dir: "str | Path", index: int) -> "RunFolder":
        return cls(run_dir(sweep_dir, index))

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoint"

    # -- reading -------------------------------------------------------------
    def _valid(self, name: str, parse=_json_object):
        """The parsed file, None if it is absent; raises Unreadable otherwise."""
        read = read_file(self.path / name, parse)
        if read.kind == "unreadable":
            raise Unreadable(self.path / name, read.why)
        return read.value

    def status_record(self) -> dict:
        return self._valid("status.json") or {}

    def summary(self) -> RunSummary | None:
        """summary.json, typed; None if it is absent."""
        data = self._valid("summary.json")
        return None if data is None else RunSummary.from_json(data)

    def results(self) -> RunResults | None:
        """results.json, typed; None if it is absent."""
        data = self._valid("results.json")
        return None if data is None else RunResults.from_json(data)

    def parameters(self) -> dict:
        return self._valid("parameters.yaml", _yaml_params) or {}

    def configuration(self) -> dict | None:
        """The configuration a pareto search proposed for this run; None if none was."""
        return self._valid(CONFIGURATION)

    def attempts(self) -> list[dict]:
        """Every attempt, oldest first: start fields merged with the end's, if it ended."""
        lines = self._valid("attempts.jsonl", lambda t: [json.loads(x) for x in t.splitlines()
                                                          if x.strip()]) or []
        attempts: list[dict] = []
        for event in lines:
            if event.get("event") == "start":
                attempts.append(dict(event))
            elif attempts:
                attempts[-1].update(event)
        # An attempt that found the run's lock held (`run.ownership`) trained nothing.
        return [a for a in attempts if a.get("how") != f"exit {BUSY_EXIT}"]

    def is_seed_format(self) -> bool:
        """The original pipeline's folder: a logs.csv with its columns and no status.json
        (a logs.csv that cannot be opened is not taken for one: `logs()` names it)."""
        if (self.path / "status.json").exists() or not (self.path / "logs.csv").exists():
            return False
        try:
            with open(self.path / "logs.csv", encoding="utf-8", errors="replace") as fh:
                return "gpu_power_W" in fh.readline()
        except OSError:
            return False

    def seed_outcome(self) -> dict:
        """An original pipeline's folder's outcome (`is_seed_format`), read, never written:
        done where it finished there (its parameters.yaml holds a test metric, written
        after training; its test metrics are given, as a done status.json holds ours), else
        skipped: greenscreen does not train that format's folders, nor resume them (no
        checkpoint of ours; no file of ours is written into them)."""
        params = self.parameters()
        tested = {k: v for k, v in (params if isinstance(params, dict) else {}).items()
                  if str(k).startswith("test_") and v is not None}
        if tested:
            return {"status": "done", "attempts": 0, **tested}
        return {"status": "skipped", "attempts": 0, "reason": SEED_UNFINISHED}

    def logs(self):
        """logs.csv as a DataFrame, epoch rows only, with our column names."""
        import pandas as pd

        path = self.path / "logs.csv"
        if not path.exists():
            return pd.DataFrame()
        try:
            data = path.read_bytes()
            nul = data.count(0)
            if nul:  # a file the disk lost (zeros after a crash), not a CSV
                raise ValueError(f"it holds {nul} NUL bytes")
            logs = pd.read_csv(io.BytesIO(data), encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise Unreadable(path, f"{type(exc).__name__}: {exc}") from exc
        if "epoch" not in logs:  # pandas reads anything; a logs.csv has an epoch column
            raise Unreadable(path, f"not a logs.csv: no epoch column in its header "
                                   f"{','.join(map(str, logs.columns))[:80]!r}")
        for seed, ours in SEED_COLUMNS.items():
            if seed in logs and ours not in logs:
                logs[ours] = logs[seed]
        if "gpu_power_W" in logs and "time" in logs and "energy_j" not in logs:
            # seed_energy()'s arithmetic per row: the reading times the time since the last row
            seconds = _times(logs["time"]).diff().dt.total_seconds()
            logs["energy_j"] = pd.to_numeric(logs["gpu_power_W"], errors="coerce") * seconds
        if "epoch" in logs:
            logs = logs[logs["epoch"].astype(str).str.fullmatch(r"\d+")]
            logs = logs.assign(epoch=logs["epoch"].astype(int))  # 4x cheaper than astype({})
        return logs.reset_index(drop=True)

    def seed_energy(self) -> tuple[float, float, float]:
        """(energy J, mean power W, duration s) of an original pipeline's folder: one
        nvidia-smi reading per epoch row, times the time since the previous row. The
        energy is NaN where an epoch has no reading (`seed_epoch_joules`): summing the
        others gave a figure 20 % low, ranked as if whole."""
        stamps, epoch, power = self._seed_rows()
        joules = _epoch_joules(stamps, epoch, power)
        watts = [w for w, e in zip(power, epoch) if e and not math.isnan(w)]
        last = next((s for s, e in zip(reversed(stamps), reversed(epoch)) if e), stamps[-1])
        return (math.fsum(joules) if not any(map(math.isnan, joules)) else math.nan,
                math.fsum(watts) / len(watts) if watts else math.nan,
                (last - stamps[0]).total_seconds())

    def seed_epoch_joules(self) -> list[float]:
        """Each epoch's energy in an original pipeline's folder: its reading times the time
        since the previous row; NaN where its gpu_power_W is missing or "[N/A]"."""
        return _epoch_joules(*self._seed_rows())

    def _seed_rows(self) -> tuple[list, list[bool], list[float]]:
        """logs.csv's (time stamps, whether each row is an epoch's, power readings)."""
        # The csv module, not pandas: logs() has parsed this file already, and a second
        # DataFrame per folder cost 5 ms, 5 s of a 1000-run sweep's analysis (0.5 ms now).
        with open(self.path / "logs.csv", encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return (_stamps([r["time"] for r in rows]),
                [re.fullmatch(r"\d+", str(r["epoch"])) is not None for r in rows],
                [_number(r["gpu_power_W"]) for r in rows])

    def outcome(self) -> dict:
        """status.json as the run process left it, corrected by what the executor saw.

        A run process that died without saying why is failed (killed by SIGKILL:
        out of memory?) or interrupted (`endings.interrupted`: SIGINT, SIGTERM, a full
        disk; or its executor died with it, e.g. the whole sweep was killed or a node was
        lost). An original pipeline's folder is done or skipped (`seed_outcome`).
        """
        record = self.status_record()
        if not record and self.is_seed_format():
            return self.seed_outcome()
        attempts = self.attempts()
        last = attempts[-1] if attempts else {}
        out = {**record, "status": record.get("status", "pending"), "attempts": len(attempts)}
        if "wall_s" in last:
            out["wall_s"] = last["wall_s"]
        if out["status"] == "done" and self.summary() is None:
            return {**out, "status": "interrupted", "reason": "half-written: summary.json is "
                    "missing"}
        if out["status"] not in ("running", "pending") or not last:
            return out
        how = last.get("how")
        if how is None:  # no end recorded: the executor is gone too, or still running
            alive = last.get("host") == socket.gethostname() and recorded_alive(last)
            return {**out, "status": "running" if alive else "interrupted",
                    **({} if alive else {"reason": "its executor stopped before the run"})}
        stopped = endings.interrupted(how, last.get("stderr_tail") or "")
        if stopped:
            return {**out, "status": "interrupted", "reason": stopped}
        if how == "exit 0" and out["status"] == "pending":
            return out
        return {**out, "status": "failed", "reason": endings.died(how, last.get("stderr_tail")
                                                                   or ""),
                "traceback_tail": last.get("stderr_tail", "")}

    def state(self) -> str:
        return self.outcome()["status"]

    # -- writing: the run process ---------------------------------------------
    def write_status(self, state: str, **extra) -> None:
        if state not in STATES:
            raise invalid("state", state, ", ".join(STATES))
        atomic_write_json(self.path / "status.json", {"status": state, "time": time.time(),
                                                      **extra})

    def write_parameters(self, params: dict) -> None:
        atomic_write_text(self.path / "parameters.yaml", yaml.safe_dump(params, sort_keys=False))

    def write_results(self, results: RunResults) -> None:
        atomic_write_json(self.path / "results.json", results.to_json())

    def remove_checkpoint(self) -> None:
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)

    # -- writing: the executor ----------------------------------------------------
    def write_configuration(self, cfg: dict) -> None:
        """Records the proposed configuration, once, before the run is claimed."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path / CONFIGURATION, cfg)

    def log_attempt_start(self) -> float:
        started = time.time()
        self._append_event({"event": "start", "host": socket.gethostname(), "pid": os.getpid(),
                            "time": started, "pid_started": process_start(os.getpid())})
        return started

    def log_attempt_end(self, started: float, returncode: int, stderr_tail: str = "",
                        worker: dict | None = None) -> None:
        """Records how an attempt ended; `worker`: a warm worker's memory after it
        (`rss_mb`, `gpu_mb`, `pid`), so a worker's growth over its runs can be read back."""
        how = (f"signal {signal.Signals(-returncode).name}" if returncode < 0
               else f"exit {returncode}")
        self._append_event({"event": "end", "time": time.time(), "how": how,
                            "wall_s": time.time() - started, "stderr_tail": stderr_tail,
                            **({"worker": worker} if worker else {})})

    def _append_event(self, event: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "attempts.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _epoch_joules(stamps: list, epoch: list[bool], power: list[float]) -> list[float]:
    """Each epoch row's reading times the time since the previous row (as logs() does)."""
    return [w * (b - a).total_seconds()
            for w, a, b, e in zip(power[1:], stamps, stamps[1:], epoch[1:]) if e]


def _stamps(texts: list) -> list:
    """Timestamps of the `time` column: ISO 8601 read directly, any other form by _times."""
    try:
        return [datetime.fromisoformat(t) for t in texts]
    except (TypeError, ValueError):
        import pandas as pd

        return list(_times(pd.Series(texts)))


def _number(text) -> float:
    """A reading as a float; NaN where it is not a number (as pandas' errors="coerce")."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _times(column):
    """The `time` column as timestamps: ISO 8601 (the original's "2023-02-25 14:39:12")
    parsed without guessing its format per file, any other form as pandas reads it."""
    import pandas as pd

    try:
        return pd.to_datetime(column, format="ISO8601")
    except (ValueError, TypeError):
        return pd.to_datetime(column)


def statuses(sweep_dir: "str | Path", runs: int) -> list[dict]:
    """Every run's outcome with its index; an unreadable folder as status "unreadable"."""
    return _outcomes(sweep_dir, range(runs))


def present(sweep_dir: "str | Path", runs: int) -> list[int]:
    """The indices below `runs` that have a run folder, in order: read from the sweep
    folder's listing, so a huge `runs` (a billion) costs what its folders cost (issue 33)."""
    try:
        names = {p.name for p in Path(sweep_dir).iterdir() if p.name.isdigit()}
    except OSError:
        return []
    # The name, not a Path per folder: the console's total asks after every run (issue 33).
    return sorted(i for i in map(int, names) if i < runs and run_name(i) in names)


def started(sweep_dir: "str | Path", runs: int) -> list[dict]:
    """`statuses` of the runs that have a folder (`present`): what a stopped sweep
    reports, without visiting every index of a huge `runs`."""
    return _outcomes(sweep_dir, present(sweep_dir, runs))


def _outcomes(sweep_dir: "str | Path", indices) -> list[dict]:
    rows = []
    for i in indices:
        try:
            rows.append({"index": i, **RunFolder.of(sweep_dir, i).outcome()})
        except Unreadable as exc:
            rows.append({"index": i, "status": "unreadable", "reason": str(exc)})
    return rows


def summaries(sweep_dir: "str | Path", runs: int):
    """(index, RunSummary) of every run whose summary.json exists and can be read; the
    others are left out (their runs keep their own figures). Only the folders that exist
    are read (`present`): the sweep's ledger calls this after every run."""
    for i in present(sweep_dir, runs):
        try:
            summary = RunFolder.of(sweep_dir, i).summary()
        except Unreadable:
            continue
        if summary is not None:
            yield i, summary


def read_json(path: Path) -> dict | None:
    """A sweep-level JSON file (sweep.json, analysis.json): None if absent; raises if
    unreadable, naming it."""
    read = read_file(Path(path), _json_object)
    if read.kind == "unreadable":
        raise Unreadable(Path(path), read.why)
    return read.value
