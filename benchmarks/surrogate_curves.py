"""LCBench's 35 tasks as tables for `benchmarks/search.py --table`, from YAHPO Gym's surrogate.

The issue's finding (halving loses the front on 52-epoch learning curves) was measured on 12
LCBench datasets; only one dataset's real curves could be reached from here
(`fetch_learning_curves.py`). YAHPO Gym (Pfisterer, Schneider, Moosbauer, Binder, Bischl:
"YAHPO Gym - An Efficient Multi-Objective Multi-Fidelity Benchmark for Hyperparameter
Optimization", AutoML Conf 2022; https://github.com/slds-lmu/yahpo_gym, Apache-2.0) ships a
neural-network surrogate fitted to all of LCBench's curves (its data: LCBench, Zimmer,
Lindauer, Hutter, IEEE TPAMI 2021, Apache-2.0): for a configuration, an OpenML task and an
epoch, the validation accuracy and the training time so far. **These curves are a model's
predictions of real runs, not real runs**: the tables say so (`benchmark`, `source`), and
RESULTS.md reports them apart from the real ones.

Each table: the grid of `fetch_learning_curves.py` (3 levels per hyperparameter at the 1/6,
1/2 and 5/6 quantiles of LCBench's sampling ranges, log scale where LCBench sampled so:
3^7 = 2187 configurations), each row the surrogate's curve for that configuration:
YAHPO's epochs 2 to 52 as epochs 1 to 51 (its epoch 1 is LCBench's epoch 0, the untrained
network's evaluation, dropped as the real table drops it), `val_accuracy` as a fraction,
`epoch_s` the step in predicted cumulative time (at least 1 ms), and `energy_j` = epoch_s x
100 W, **an estimate labelled `estimated:surrogate wall-time x 100 W`**; ratios of energy
(all the benchmark reports) do not depend on the constant.

Needs yahpo_gym and onnxruntime (not dependencies of the pipeline; `pip install --target
DIR yahpo-gym onnxruntime`, then PYTHONPATH=DIR) and YAHPO's data folder (the `lcbench/`
folder of https://github.com/slds-lmu/yahpo_data: config_space.json, encoding.json,
model.onnx, ...).
Usage: python benchmarks/surrogate_curves.py --data DIR [--tasks 3945,...|--every 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POWER_W = 100.0
SOURCE = f"estimated:surrogate wall-time x {POWER_W:g} W"
# YAHPO's (= LCBench's) name -> the table's (as fetch_learning_curves.PARAMS).
PARAMS = {"batch_size": "batch_size", "learning_rate": "lr", "momentum": "momentum",
          "weight_decay": "weight_decay", "num_layers": "layers", "max_units": "units",
          "max_dropout": "dropout"}
LEVELS = (1 / 6, 1 / 2, 5 / 6)
EPOCHS = range(2, 53)  # YAHPO's epoch 1 is the untrained network's evaluation


def benchmark(data: Path, task: str):
    """YAHPO Gym's LCBench surrogate for OpenML task `task`, reading `data`/lcbench."""
    from yahpo_gym import benchmark_set, local_config

    local_config.init_config()
    local_config.set_data_path(str(data))
    return benchmark_set.BenchmarkSet("lcbench", instance=task, check=False)


def grid(bench) -> dict[str, list]:
    """3 levels per hyperparameter at quantiles of its sampling range (log where so)."""
    space = bench.get_opt_space(drop_fidelity_params=True)
    out = {}
    for name, short in PARAMS.items():
        hp = space.get_hyperparameter(name)
        lo, hi = float(hp.lower), float(hp.upper)
        if hp.log:
            values = [math.exp(math.log(lo) + q * (math.log(hi) - math.log(lo))) for q in LEVELS]
        else:
            values = [lo + q * (hi - lo) for q in LEVELS]
        integer = "Integer" in type(hp).__name__
        out[short] = [int(round(v)) for v in values] if integer else [float(f"{v:.3g}")
                                                                      for v in values]
    return out


def table(data: Path, task: str) -> dict:
    """One task's table in benchmarks/search.py's format."""
    bench = benchmark(data, task)
    space = grid(bench)
    combos = list(itertools.product(*space.values()))
    queries = [{"OpenML_task_id": task, "epoch": epoch,
                **{name: combo[j] for j, name in enumerate(PARAMS)}}
               for combo in combos for epoch in (1, *EPOCHS)]
    answers = bench.objective_function(queries, seed=0)
    per = len(EPOCHS) + 1
    rows = []
    for k, combo in enumerate(combos):
        curve = answers[k * per:(k + 1) * per]
        times = [float(a["time"]) for a in curve]
        seconds = [max(times[e] - times[e - 1], 1e-3) for e in range(1, per)]
        rows.append({"config": dict(zip(space, combo)),
                     "val_accuracy": [round(float(a["val_accuracy"]) / 100.0, 6)
                                      for a in curve[1:]],
                     "epoch_s": [round(s, 4) for s in seconds],
                     "energy_j": [round(s * POWER_W, 3) for s in seconds]})
    return {"space": space, "epochs": len(EPOCHS), "source": SOURCE,
            "dataset": f"openml-task-{task}",
            "benchmark": "YAHPO Gym's LCBench surrogate (Pfisterer et al. 2022) of LCBench "
                         "(Zimmer et al. 2021): predicted curves, not real runs",
            "license": "Apache-2.0", "power_w": POWER_W, "rows": rows,
            "train_wall_s": None, "date": None}


def tasks(data: Path) -> list[str]:
    """The OpenML task ids YAHPO's LCBench surrogate knows, in numeric order."""
    encoding = json.loads((data / "lcbench" / "encoding.json").read_text())
    return sorted((t for t in encoding["OpenML_task_id"] if t.isdigit()), key=int)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="YAHPO's data folder (holds lcbench/)")
    parser.add_argument("--tasks", default="", help="comma-separated OpenML task ids")
    parser.add_argument("--every", type=int, default=3,
                        help="without --tasks: every n-th task in numeric order (3: 12 of 35)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "data")
    args = parser.parse_args()
    names = [t for t in args.tasks.split(",") if t] or tasks(args.data)[::args.every]
    args.out.mkdir(parents=True, exist_ok=True)
    for task in names:
        data = table(args.data, task)
        path = args.out / f"yahpo_lcbench_{task}.json"
        path.write_text(json.dumps(data) + "\n")
        print(f"{path}: {len(data['rows'])} configurations x {data['epochs']} epochs", flush=True)


if __name__ == "__main__":
    main()
