"""Real learning curves of two more benchmarks as tables for `benchmarks/search.py --table`.

Both are real training runs, not a surrogate's predictions; neither measured power, so the
energy in every table is an estimate, labelled so in its `source` (ratios of energy, all the
benchmark reports, do not depend on the constant).

1. SpikeNAS-Bench (Sun et al., "SpikeNAS-Bench: Benchmarking NAS Algorithms for Spiking
   Neural Network Architecture", IEEE Transactions on Artificial Intelligence, 2024;
   https://github.com/tju-sun-lab/SpikeNAS-Bench, commit 9994ce3). **Its repository has no
   licence file**: its data is read or downloaded by this script, never committed here.
   Every one of the 15,625 cells of a NAS-Bench-201-like space (6 edges of a 4-node cell,
   5 operations each: zero, skip, or LIF neurons at firing threshold 0.5, 1.0 or 1.5 before
   a 3x3 convolution) trained as a spiking network on CIFAR-10 (SGD, cosine annealing),
   `data/CIFAR10/<arch id>/train_process.txt`: per epoch the validation accuracy (half of
   CIFAR-10's training set), at the end the run's wall time. Table
   `benchmarks/data/spikenas_cifar10.json`:
       space     the 6 edges (`e01` ... `e23`, from node to node) x 5 operations, a full grid
                 of 5^6 = 15,625 configurations, each its own run (the arch id -> cell
                 mapping is the repository's `get_cntmat_3`: edge k is base-5 digit k);
       rows      100 epochs of `val_accuracy` as a fraction, `energy_j` per epoch = the
                 run's wall time / its epochs x 100 W, **labelled `estimated:wall-time per
                 run / epochs x 100 W`** (the run's time is spread evenly over its epochs).
                 690 runs were trained for 200 epochs (cosine over 200): their first 100
                 epochs are kept, at their own time per epoch (`epochs_trained`: 200), so
                 they end half-way through their schedule.
2. TaskSet (Metz et al., "Using a thousand optimization tasks to learn hyperparameter
   search strategies", 2020) as packaged by DPL (Kadra et al., "Scaling Laws for
   Hyperparameter Optimization", NeurIPS 2023; https://github.com/releaunifreiburg/DPL,
   commit de44b74, Apache License 2.0): 12 IMDB text-classification RNN tasks, 1000 random
   Adam configurations each (learning rate, beta1, beta2, epsilon, l1, l2, linear and
   exponential decay), the validation loss at 51 checkpoints, `data/taskset/<task>.json`.
   Table `benchmarks/data/taskset_<task>.json` per task:
       space     the learning rate at 5 levels, and epsilon, l2, exponential decay, l1
                 and beta1 at 3 (the next most important hyperparameters, by the share of
                 the final objective's variance their deciles explain, averaged over the 12
                 tasks; beta2 and linear decay explain less than 1 %), at quantiles of the
                 1000 configurations (log scale; log(1 - beta) for beta1): 5 x 3^5 = 1215
                 configurations, each row the curve of the configuration nearest to it
                 (min-max scaled on those scales; `taskset_id` says which; about 690 of the
                 1000 are used). The grid's best final value is within 1 % of the best of
                 all 1000 on every task (fewer levels lose up to 20 %: the learning rate
                 decides nearly everything, and only about 6 % of the grid learns at all);
       rows      checkpoints 1 to 50 (checkpoint 0, before training, is dropped) as epochs;
                 `val_accuracy` = exp(-validation loss), the geometric-mean probability given
                 to the true class (**not an accuracy**; 0.5 is chance on IMDB), a NaN
                 (diverged) loss -> the table's worst value; `energy_j` = 1 J per
                 checkpoint, **labelled `estimated:uniform cost per checkpoint`**: TaskSet
                 recorded no time, and within a task every configuration trains the same
                 model for the same steps. So every full run costs the same: the table's
                 (objective, energy) front is one point, the best run, and only the sweep's
                 energy (runs, and epochs of stopped runs) tells strategies apart.
                 benchmarks/search.py puts such a table's reference energy above it (a
                 reference at the one energy would give every front zero hypervolume).

Usage: python benchmarks/fetch_real_curves.py [--source DIR] [--only spikenas|taskset]
       [--tasks a,b] [--out DIR]
where DIR holds `SpikeNAS-Bench/data/CIFAR10/` and `DPL/data/taskset/` (the repositories'
data folders); a missing one is downloaded from GitHub at the commit above when this
machine can reach it.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import re
import shutil
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = "https://codeload.github.com/{repo}/tar.gz/{commit}"
SPIKE = ("tju-sun-lab/SpikeNAS-Bench", "9994ce3999eded92c104fa7ce7082d4747cce3c3",
         "data/CIFAR10")
DPL = ("releaunifreiburg/DPL", "de44b74030a7d4bb37467add431e6fac19cd357a", "data/taskset")
POWER_W = 100.0
SPIKE_SOURCE = f"estimated:wall-time per run / epochs x {POWER_W:g} W"
TASKSET_SOURCE = "estimated:uniform cost per checkpoint"
# SpikeNAS: the operation codes of get_cntmat_3's matrix; edges in its `position` order.
OPS = ["zero", "skip", "lif0.5", "lif1.0", "lif1.5"]
EDGES = ["e01", "e02", "e03", "e12", "e13", "e23"]
EPOCHS = 100
# TaskSet: hyperparameter -> its number of levels (the grid); scales as DPL's `log_indicator`,
# the betas on log(1 - beta) as TaskSet samples them.
LEVELS = {"learning_rate": 5, "epsilon": 3, "l2": 3, "exponential_decay": 3, "l1": 3, "beta1": 3}
ONE_MINUS = {"beta1", "beta2"}
CHECKPOINT_J = 1.0


def ensure(source: Path, name: str, spec: tuple) -> Path:
    """`source`/`name`/<data folder>, downloaded (the repository's archive at the pinned
    commit, only that folder extracted) when it is not there. The folder appears whole or
    not at all: it is extracted beside it and renamed, so an interrupted download is not
    taken for the data next time."""
    repo, commit, folder = spec
    path = source / name / folder
    if path.is_dir():
        return path
    with urllib.request.urlopen(ARCHIVE.format(repo=repo, commit=commit)) as response:
        blob = io.BytesIO(response.read())
    partial = source / name / f".partial-{os.getpid()}"
    try:
        with tarfile.open(fileobj=blob, mode="r:gz") as tar:
            for member in tar.getmembers():
                inner = member.name.split("/", 1)[-1]
                if member.isfile() and inner.startswith(folder + "/"):
                    member.name = inner
                    tar.extract(member, partial, filter="data")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial / folder, path)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return path


# -- SpikeNAS-Bench ---------------------------------------------------------------------------
def cell(arch: int) -> dict[str, str]:
    """get_cntmat_3(arch) as the table's configuration: edge k's operation is base-5 digit k."""
    return {edge: OPS[(arch // 5 ** k) % 5] for k, edge in enumerate(EDGES)}


def read_run(path: Path) -> tuple[list[float], float]:
    """One train_process.txt: the per-epoch validation accuracy (%) and the run's seconds."""
    text = path.read_text()
    acc = [float(line.split(",")[3]) for line in text.splitlines()
           if re.match(r"^\d+\.\d+, ", line)]
    h, m, s = re.search(r"Elapsed time: ([\d.]+)hour([\d.]+)minute([\d.]+)second", text).groups()
    return acc, float(h) * 3600 + float(m) * 60 + float(s)


def spikenas(folder: Path) -> dict:
    """SpikeNAS-Bench CIFAR-10's table in benchmarks/search.py's format."""
    rows = []
    for arch in range(5 ** len(EDGES)):
        acc, seconds = read_run(folder / str(arch) / "train_process.txt")
        per_epoch = seconds / len(acc)
        rows.append({"config": cell(arch), "arch_id": arch, "epochs_trained": len(acc),
                     "val_accuracy": [round(a / 100.0, 5) for a in acc[:EPOCHS]],
                     "epoch_s": [round(per_epoch, 3)] * EPOCHS,
                     "energy_j": [round(per_epoch * POWER_W, 2)] * EPOCHS})
    return {"space": {edge: OPS for edge in EDGES}, "epochs": EPOCHS, "source": SPIKE_SOURCE,
            "dataset": "cifar10",
            "benchmark": "SpikeNAS-Bench (Sun et al. 2024), real runs; runs trained for 200 "
                         "epochs: their first 100",
            "license": "none stated (no licence file in the repository): not redistributed",
            "power_w": POWER_W, "rows": rows,
            "runs_200_epochs": sum(r["epochs_trained"] == 200 for r in rows),
            "train_wall_s": None, "date": None}


# -- TaskSet ----------------------------------------------------------------------------------
def scale(name: str, values: np.ndarray) -> np.ndarray:
    """A hyperparameter on the scale it was sampled on: log, log(1 - x) for the betas."""
    return np.log1p(-values) if name in ONE_MINUS else np.log(values)


def unscale(name: str, values: np.ndarray) -> np.ndarray:
    return -np.expm1(values) if name in ONE_MINUS else np.exp(values)


def levels(n: int) -> list[float]:
    """n quantiles, the centres of n equal shares (3: 1/6, 1/2, 5/6, as LCBench's grid)."""
    return [(2 * k + 1) / (2 * n) for k in range(n)]


def objective(runs: list[dict]) -> np.ndarray:
    """exp(-validation loss) per run and checkpoint 1..50; NaN -> the table's worst value."""
    loss = np.array([run["valid"]["loss"][1:] for run in runs], dtype=float)
    value = np.exp(-loss)
    return np.where(np.isfinite(value), value, np.nanmin(value))


def taskset_grid(runs: list[dict]) -> tuple[dict, dict]:
    """The table's space, and per grid configuration the nearest of the runs (min-max scaled
    on the sampled scales)."""
    names = list(LEVELS)
    x = np.column_stack([scale(n, np.array([r["hp"][n] for r in runs])) for n in names])
    lo, hi = x.min(axis=0), x.max(axis=0)
    points = (x - lo) / (hi - lo)
    quantiles = [np.quantile(x[:, j], levels(LEVELS[n])) for j, n in enumerate(names)]
    space = {n: [float(f"{v:.3g}") for v in unscale(n, q)] for n, q in zip(names, quantiles)}
    nearest = {}
    for index in itertools.product(*(range(LEVELS[n]) for n in names)):
        target = (np.array([q[k] for q, k in zip(quantiles, index)]) - lo) / (hi - lo)
        key = tuple(space[n][k] for n, k in zip(names, index))
        nearest[key] = int(np.argmin(((points - target) ** 2).sum(axis=1)))
    return space, nearest


def taskset(path: Path) -> dict:
    """One TaskSet task's table in benchmarks/search.py's format."""
    runs = json.loads(path.read_text())
    value = objective(runs)
    space, nearest = taskset_grid(runs)
    epochs = value.shape[1]
    rows = [{"config": dict(zip(space, key)), "taskset_id": i,
             "val_accuracy": [float(f"{v:.6g}") for v in value[i]],
             "energy_j": [CHECKPOINT_J] * epochs} for key, i in nearest.items()]
    diverged = int(np.isnan(np.array([r["valid"]["loss"][1:] for r in runs], float)).any(1).sum())
    return {"space": space, "epochs": epochs, "source": TASKSET_SOURCE,
            "dataset": path.stem,
            "benchmark": "TaskSet (Metz et al. 2020) via DPL (Kadra et al. 2023), real runs",
            "objective": "val_accuracy holds exp(-validation loss), the geometric-mean "
                         "probability of the true class, not an accuracy; a NaN loss -> the "
                         "table's worst value",
            "license": "Apache-2.0 (DPL's repository)", "checkpoint_j": CHECKPOINT_J,
            "rows": rows, "taskset_configs_used": len(set(nearest.values())),
            "taskset_configs_diverged": diverged,
            "best_of_all_configs": float(value[:, -1].max()),
            "train_wall_s": None, "date": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT / "benchmarks" / "data" / "real",
                        help="holds SpikeNAS-Bench/data/CIFAR10 and DPL/data/taskset")
    parser.add_argument("--only", choices=["spikenas", "taskset"], default=None)
    parser.add_argument("--tasks", default="",
                        help="comma-separated TaskSet task names; default: all 12")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "data")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tables = []
    if args.only != "taskset":
        tables.append(("spikenas_cifar10", lambda: spikenas(
            ensure(args.source, "SpikeNAS-Bench", SPIKE))))
    if args.only != "spikenas":
        folder = ensure(args.source, "DPL", DPL)
        names = [t for t in args.tasks.split(",") if t] or sorted(
            p.stem for p in folder.glob("*.json"))
        tables += [(f"taskset_{short(n)}", lambda n=n: taskset(folder / f"{n}.json"))
                   for n in names]
    for stem, build in tables:
        data = build()
        path = args.out / f"{stem}.json"
        path.write_text(json.dumps(data) + "\n")
        best = max(r["val_accuracy"][-1] for r in data["rows"])
        print(f"{path}: {len(data['rows'])} configurations x {data['epochs']} epochs, "
              f"best final {best:.3f}; energy {data['source']}", flush=True)


def short(task: str) -> str:
    """A TaskSet task's name without its common prefix, e.g. imdb_patch32_GRU128_bs128."""
    return task.removeprefix("FixedTextRNNClassification_")


if __name__ == "__main__":
    main()
