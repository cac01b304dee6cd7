"""The real-GPU check: every power source against the NVML energy counter, over the same windows.

    ./greenscreen.sh gpu-check [--out FILE] [--scale 1.0] [--epochs 5] [--fit-scale S]
                               [--no-fit]

On a machine with an NVIDIA GPU it measures, with all sources running at once:
- the windows: idle 10 s; a steady matmul load 20 s; on/off square waves with 2 s
  and 0.5 s periods, 20 s each; a 0.3 s burst (measured with a 2 s idle tail);
- the whole node as SMICallback's default measures it (GPU + CPU + DRAM where RAPL is
  readable, each component apart);
- the sources: the nvidia-smi stream reading `power.draw` (on Ampere and newer a
  1-second average), the same reading `power.draw.instant` (what greenscreen reads
  by default where the driver has it), NVML power polled at 10 Hz, and the NVML
  total-energy counter as the reference;
- per window and source: energy, error against the counter, sample coverage, the 95 %
  interval (`energy_err_j`) and whether it holds the counter; per source: the
  sampler's CPU cost; and nvidia-smi's start-up time;
- then a real Keras `fit` on the JAX backend (a small CNN on the embedded digits,
  sized so that an epoch lasts a few seconds on a GPU) with one `SMICallback` per
  source, compared per epoch with the counter over the same epoch windows;
- `intervals`: per source, how often its interval held the counter over the windows
  and epochs, and its median half-width against the median error (gpu_intervals.py).

It prints a line per phase as it goes and rewrites its JSON file (atomically) after
every phase, so a run cut short (a time limit, SIGTERM) still returns what it measured:
`status` says "running", "done" or "interrupted: ...", `phases` lists each phase with
its seconds and error. A phase that fails is recorded with its error and the check goes
on; a source or the counter that cannot run is reported with the reason, never dropped.
At the end it prints a table. `--scale` shortens every window (the test runs it against
the fake nvidia-smi with --scale 0.05).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # this check is the JAX path on a real GPU

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gpu_intervals  # noqa: E402
from gpu_loads import Counter, MatmulLoad, schedule  # noqa: E402

from greenscreen.fileio import atomic_write_text, to_jsonable  # noqa: E402
from greenscreen.meters import EnergyMeter, SourceUnavailable  # noqa: E402
from greenscreen.meters.nvidia_smi import NvidiaSmiSource, resolve_executable  # noqa: E402
from greenscreen.meters.nvml import NvmlSource  # noqa: E402

SOURCES = {
    "nvidia-smi power.draw": lambda: NvidiaSmiSource(0.1, power_field="power.draw"),
    "nvidia-smi power.draw.instant": lambda: NvidiaSmiSource(0.1,
                                                             power_field="power.draw.instant"),
    "nvml power 10 Hz": lambda: NvmlSource(0.1, counter=False),
}


class Interrupted(BaseException):
    """SIGTERM (a time limit) while a phase ran; a BaseException, like KeyboardInterrupt,
    so that no `except Exception` on the way (a callback's guard) swallows it."""


class Progress:
    """The result so far: one line per phase on stdout, the JSON rewritten after each."""

    def __init__(self, out: Path) -> None:
        self.out, self.start = out, time.time()
        self.result: dict[str, Any] = {
            "status": "running", "started": datetime.now().isoformat(timespec="seconds"),
            "command": [sys.executable, *sys.argv], "phases": []}
        self.write()

    def write(self) -> None:
        self.result["wall_s"] = time.time() - self.start
        atomic_write_text(self.out, json.dumps(to_jsonable(self.result), indent=2,
                                               default=str) + "\n")

    def phase(self, name: str, work: Callable[[], Any], summary: Callable[[Any], str],
              keep: Callable[[Any], None] | None = None) -> Any:
        """Runs one phase: its value, or None when it failed (the error is recorded).
        `keep` puts the value into the result before the JSON is rewritten."""
        print(f"gpu-check: {name} ...", flush=True)
        t0, value, error = time.time(), None, None
        try:
            value = work()
        except Interrupted:
            self.result["phases"].append({"phase": name, "seconds": time.time() - t0,
                                          "error": "interrupted (SIGTERM)"})
            raise
        except Exception as exc:  # a failed phase is a finding, never the end of the check
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.time() - t0
        self.result["phases"].append({"phase": name, "seconds": seconds, "error": error})
        if keep is not None and error is None:
            keep(value)
        self.write()
        said = f"failed: {error}" if error else summary(value)
        print(f"gpu-check: {name} ({seconds:.1f} s): {said}", flush=True)
        return value

    def finish(self, status: str) -> None:
        self.result["status"] = status
        self.write()


WHOLE_NODE = "auto: GPU + CPU + DRAM"


def nvidia_smi_facts() -> dict:
    """Device name, driver, the wall time of one nvidia-smi query (its start-up cost) and
    the power field greenscreen's default ("auto") reads here."""
    exe = resolve_executable()
    if exe is None:
        return {"reason": "nvidia-smi not found"}
    facts: dict[str, Any] = {"executable": exe}
    start = time.perf_counter()
    out = subprocess.run([exe, "--query-gpu=power.draw", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=60)
    facts["startup_s"] = time.perf_counter() - start
    info = subprocess.run([exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                          capture_output=True, text=True, timeout=60)
    facts["device"] = (info.stdout.strip() or info.stderr.strip() or out.stderr.strip())
    auto = NvidiaSmiSource(0.1)
    facts["auto_field"], facts["auto_field_note"] = auto.field, auto.field_note
    facts["auto_provenance"] = auto.provenance
    return facts


def start_meters() -> tuple[dict, dict, dict]:
    """(meters, their sources, reasons): every source of SOURCES that can run here in its
    own meter, and why each other one cannot."""
    meters, sources, reasons = {}, {}, {}
    for name, make in SOURCES.items():
        source = make()
        reason = source.unavailable_reason()
        if reason:
            reasons[name] = reason
            continue
        try:
            meters[name], sources[name] = EnergyMeter(source=source).start(), source
        except SourceUnavailable as exc:
            reasons[name] = str(exc)
    # The whole node as SMICallback's default measures it: the GPUs, the CPU packages and
    # DRAM (RAPL) where readable, each component apart; the counter checks the GPU part.
    try:
        meters[WHOLE_NODE] = EnergyMeter(source="auto", attribution="device").start()
    except SourceUnavailable as exc:
        reasons[WHOLE_NODE] = str(exc)
    for meter in meters.values():
        meter.wait_for_sample(timeout=30)
    return meters, sources, reasons


def measure_window(meters: dict, counter: Counter, load, scale: float, name: str,
                   seconds: float, pattern, tail: float) -> dict:
    """One window of the schedule: the counter's energy and each source's, side by side."""
    time.sleep(0.5 * scale + 0.2)  # settle between windows
    t0, c0 = time.time(), counter.read()
    windows = {src: m.window(name, t_start=t0) for src, m in meters.items()}
    load.run(pattern, seconds)
    time.sleep(tail)
    t1, c1 = time.time(), counter.read()
    time.sleep(1.0)  # let samples past the window's end arrive before closing it
    reference = c1 - c0 if counter.available else math.nan
    row: dict[str, Any] = {"window": name, "duration_s": t1 - t0, "counter_j": reference,
                           "sources": {}}
    for src, w in windows.items():
        w.close(t_end=t1)
        row["sources"][src] = {"energy_j": w.energy_j, "coverage": w.coverage,
                               "error_pct": 100 * (w.energy_j - reference) / reference
                               if reference and reference > 0 else math.nan,
                               "energy_err_j": w.energy_err_j,
                               "inside": gpu_intervals.inside(w.energy_j, reference,
                                                              w.energy_err_j),
                               "source": w.source, "reason": w.reason,
                               "components": {c: {"energy_j": cw.energy_j, "source": cw.source}
                                              for c, cw in w.components.items()},
                               "unmeasured": dict(w.unmeasured)}
    return row


def window_line(row: dict) -> str:
    cells = [f"counter {row['counter_j']:.1f} J"] + [
        f"{src} {cell['energy_j']:.1f} J ({cell['coverage']:.0%} covered)"
        for src, cell in row["sources"].items()]
    return f"{row['duration_s']:.2f} s; " + "; ".join(cells)


def fit_check(counter: Counter, scale: float, epochs: int) -> dict:
    """A Keras fit on JAX with one SMICallback per source, per epoch against the counter.
    `scale` sizes the data and the model (0.5 and above: the GPU size)."""
    setup = time.time()
    import keras

    from greenscreen import SMICallback

    class CounterLog(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.epochs, self.seconds = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.c0, self.t0 = counter.read(), time.time()

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(counter.read() - self.c0 if counter.available else math.nan)
            self.seconds.append(time.time() - self.t0)
            print(f"gpu-check:   epoch {epoch + 1}/{epochs}: {self.seconds[-1]:.1f} s",
                  flush=True)

    x, y = digits(repeat=max(1, round(30 * scale)))
    keras.utils.set_random_seed(0)
    width = 128 if scale >= 0.5 else 8
    model = keras.Sequential([
        keras.Input(x.shape[1:]),
        keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    ref, tmp = CounterLog(), Path(tempfile.mkdtemp(prefix="gpu-check-"))
    callbacks, logs = [ref], {}
    for name, make in SOURCES.items():
        source = make()
        if source.unavailable_reason() is None:
            logs[name] = tmp / name.replace(" ", "_")
            callbacks.append(SMICallback(log_dir=logs[name], source=source))
    logs[WHOLE_NODE] = tmp / "auto"  # SMICallback's default: every component it can read
    callbacks.append(SMICallback(log_dir=logs[WHOLE_NODE], attribution="device"))
    start = time.time()
    model.fit(x, y, epochs=epochs, batch_size=256, verbose=0, callbacks=callbacks)
    per_source = {name: epoch_rows(folder / "logs.csv") for name, folder in logs.items()}
    return {"backend": keras.backend.backend(), "samples": int(len(x)), "epochs": epochs,
            "width": width, "setup_s": start - setup, "fit_s": time.time() - start,
            "epoch_s": ref.seconds, "counter_j": ref.epochs,
            "counter_reason": None if counter.available else counter.reason,
            "sources": {name: {
                "energy_j": [r["energy_j"] for r in rows],
                "energy_err_j": [r["energy_err_j"] for r in rows],
                "source": sorted({r["source"] for r in rows}),
                "components": {c: [r.get(f"energy_{c}_j") for r in rows]
                               for c in ("gpu", "cpu", "dram")
                               if any(r.get(f"energy_{c}_j") is not None for r in rows)},
                "error_pct": [100 * (r["energy_j"] - b) / b if b and b > 0 else math.nan
                              for r, b in zip(rows, ref.epochs)]}
                for name, rows in per_source.items()}}


def digits(repeat: int):
    """The embedded digits at 32x32, repeated so an epoch lasts long enough to measure."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.kron(d.images / 16.0, np.ones((4, 4)))[..., None].astype("float32")  # 8x8 -> 32x32
    return np.tile(x, (repeat, 1, 1, 1)), np.tile(d.target, repeat)


def epoch_rows(path: Path) -> list[dict]:
    """Each epoch's energy and provenance from an SMICallback's logs.csv."""
    import csv

    with open(path, newline="") as fh:
        return [{"energy_j": float(row["energy_j"]), "source": row["source"],
                 "energy_err_j": float(row.get("energy_err_j") or math.nan),
                 **{f"energy_{c}_j": float(row[f"energy_{c}_j"]) for c in ("gpu", "cpu", "dram")
                    if row.get(f"energy_{c}_j") not in (None, "")}}
                for row in csv.DictReader(fh)]


def table(result: dict) -> str:
    lines = [f"{'window':<12} {'counter J':>10}  " + "  ".join(
        f"{name[:26]:>26}" for name in [*SOURCES, WHOLE_NODE])]
    for row in result.get("windows", []):
        cells = []
        for name in [*SOURCES, WHOLE_NODE]:
            cell = row["sources"].get(name)
            cells.append(f"{'unavailable':>26}" if cell is None else
                         f"{cell['energy_j']:>10.1f} J {cell['error_pct']:>+7.2f} % "
                         f"{cell['coverage']:>4.0%}")
        lines.append(f"{row['window']:<12} {row['counter_j']:>10.1f}  " + "  ".join(cells))
    return "\n".join(lines)


def on_sigterm(signum, frame) -> None:
    raise Interrupted()


def run_phases(progress: Progress, args: argparse.Namespace) -> None:
    """Every phase in order; each one's result lands in progress.result as it ends."""
    result = progress.result

    def keep(key: str, convert: Callable[[Any], Any] = lambda v: v) -> Callable[[Any], None]:
        return lambda value: result.__setitem__(key, convert(value))

    progress.phase("nvidia-smi", nvidia_smi_facts, lambda f: (
        f"{f.get('device') or f.get('reason')}; start-up {f.get('startup_s', math.nan):.2f} s; "
        f"greenscreen reads {f.get('auto_field')}"), keep("nvidia_smi"))
    counter = progress.phase("NVML energy counter", Counter, lambda c: (
        "available" if c.available else f"unavailable: {c.reason}"),
        keep("counter", Counter.describe)) or Counter.unavailable(
        "the counter could not be set up (see phases)")
    result["counter"] = counter.describe()

    def kept_sources(started: tuple) -> None:
        result["unavailable"] = started[2]
        result["provenance"] = {name: s.provenance for name, s in started[1].items()}
        if WHOLE_NODE in started[0]:
            result["provenance"][WHOLE_NODE] = started[0][WHOLE_NODE].source

    meters, sources, _ = progress.phase(
        "sources", start_meters, lambda m: f"running: {', '.join(m[0]) or 'none'}; "
        f"unavailable: {', '.join(f'{k} ({v})' for k, v in m[2].items()) or 'none'}",
        kept_sources) or ({}, {}, None)
    load = progress.phase("JAX matmul load", MatmulLoad, lambda m: json.dumps(m.describe()),
                          keep("load", MatmulLoad.describe))
    before, t0 = {name: s.cpu_seconds() for name, s in sources.items()}, time.time()
    result["windows"] = []
    if load is None:
        result["windows_reason"] = "no load to measure: the JAX matmul load failed (phases)"
    for name, seconds, pattern, tail in schedule(args.scale) if load else []:
        progress.phase(f"window {name}", partial(
            measure_window, meters, counter, load, args.scale, name, seconds, pattern, tail),
            window_line, result["windows"].append)
    wall = time.time() - t0  # CPU seconds per wall second of each sampler, in %
    result["sampler_cpu_pct"] = {name: 100 * (s.cpu_seconds() - before[name]) / wall
                                 for name, s in sources.items()}
    result["health"] = {src: m.health for src, m in meters.items()}
    for meter in meters.values():
        meter.stop()
    progress.write()
    if not args.no_fit:
        fit_scale = args.scale if args.fit_scale is None else args.fit_scale
        progress.phase("Keras fit (JAX)", lambda: fit_check(counter, fit_scale, args.epochs),
                       lambda f: f"{f['epochs']} epochs in {f['fit_s']:.1f} s; per epoch J: "
                       + "; ".join(f"{k} {[round(e, 1) for e in v['energy_j']]}"
                                   for k, v in f["sources"].items()), keep("fit"))
    result["intervals"] = gpu_intervals.summary(result)
    counter.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="./greenscreen.sh gpu-check",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/results/gpu_check.json",
                        help="the JSON written after every phase (default: %(default)s)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies every window's length (the test uses 0.05)")
    parser.add_argument("--epochs", type=int, default=5,
                        help="epochs of the Keras fit part (default: %(default)s)")
    parser.add_argument("--fit-scale", type=float, default=None,
                        help="sizes the fit's data and model instead of --scale (a CPU run "
                        "of the full-length windows takes --fit-scale 0.05)")
    parser.add_argument("--no-fit", action="store_true", help="leave out the Keras fit part")
    args = parser.parse_args(argv)
    for flag, value in (("--scale", args.scale), ("--fit-scale", args.fit_scale)):
        if value is not None and not value > 0:
            parser.error(f"{flag}={value} is not valid; allowed: a number > 0")
    if args.epochs < 1:
        parser.error(f"--epochs={args.epochs} is not valid; allowed: an integer >= 1")

    progress = Progress(Path(args.out))
    print(f"gpu-check: writing {args.out} after every phase", flush=True)
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        run_phases(progress, args)
    except (Interrupted, KeyboardInterrupt) as exc:
        why = "SIGTERM" if isinstance(exc, Interrupted) else "SIGINT"
        progress.finish(f"interrupted: {why}")
        print(f"gpu-check: interrupted ({why}); wrote what was measured to {args.out}")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    progress.finish("done")
    result = progress.result
    print(table(result))
    print(json.dumps({k: result.get(k) for k in ("nvidia_smi", "counter", "unavailable",
                                                 "provenance", "sampler_cpu_pct")},
                     indent=1, default=str))
    if "fit" in result:
        print("fit (per epoch, J):", json.dumps(to_jsonable(result["fit"]), default=str))
    print("\n".join(gpu_intervals.lines(result["intervals"])))
    print(f"gpu-check: done in {result['wall_s']:.1f} s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
