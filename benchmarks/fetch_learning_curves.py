"""Learning curves of real training runs (LCBench) as a table for `benchmarks/search.py --table`.

Source: LCBench (Zimmer, Lindauer, Hutter: "Auto-PyTorch Tabular: Multi-Fidelity
MetaLearning for Efficient and Robust AutoDL", IEEE TPAMI 43(9), 2021,
https://github.com/automl/LCBench), Apache License 2.0. 2000 configurations of funnel-shaped
MLPs trained with SGD and cosine annealing on each of 35 OpenML datasets, per epoch: the
validation accuracy and a wall-clock timestamp. Read here from LCBenchLite
(https://github.com/ltiao/LCBenchLite, Apache License 2.0, the copy Ax's LCBench benchmark
loads): LCBench's JSON split per dataset into `<dataset>/config.parquet.gzip` and
`<dataset>/metrics.parquet.gzip`.

What the table holds, per dataset (`benchmarks/data/lcbench_<dataset>.json`, git-ignored):
    space     7 hyperparameters (batch size, learning rate, momentum, weight decay, layers,
              max units, max dropout), 3 levels each at the 1/6, 1/2 and 5/6 quantiles of
              LCBench's random sample (log scale for batch size, learning rate, units): a grid
              of 3^7 = 2187 configurations, so that space.py's random search and the pareto
              sampler propose from it as in a sweep;
    rows      per grid configuration, the curve of the LCBench configuration nearest to it
              (min-max scaled, log where sampled on a log scale; `lcbench_id` says which):
              epochs 1 to 51 (epoch 0, the untrained network's evaluation, is dropped),
              `val_accuracy` as a fraction, `epoch_s` from the timestamps, and `energy_j`
              = epoch_s x POWER_W. **The energy is an estimate: wall time x a constant
              100 W**, labelled `estimated:wall-time x 100 W` in the table; LCBench
              measured no power. Ratios of energy (all the benchmark reports) do not depend
              on the constant.

Needs pandas and pyarrow (not dependencies of the pipeline: `pip install pyarrow`).
Usage: python benchmarks/fetch_learning_curves.py --source DIR [--datasets a,b] [--out DIR]
where DIR is a checkout of LCBenchLite; a dataset missing there is downloaded from GitHub
when this machine can reach it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
URL = "https://raw.githubusercontent.com/ltiao/LCBenchLite/main/{dataset}/{stem}.parquet.gzip"
POWER_W = 100.0
SOURCE = f"estimated:wall-time x {POWER_W:g} W"
# LCBench's name -> the table's, and whether it was sampled on a log scale.
PARAMS = {"batch_size": ("batch_size", True), "learning_rate": ("lr", True),
          "momentum": ("momentum", False), "weight_decay": ("weight_decay", False),
          "num_layers": ("layers", False), "max_units": ("units", True),
          "max_dropout": ("dropout", False)}
LEVELS = (1 / 6, 1 / 2, 5 / 6)
INTEGER = {"batch_size", "num_layers", "max_units"}


def read(source: Path, dataset: str, stem: str):
    """One parquet file of a dataset, from `source` or else downloaded into it."""
    import pandas as pd

    path = source / dataset / f"{stem}.parquet.gzip"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        urllib.request.urlretrieve(URL.format(dataset=dataset, stem=stem), path)
    return pd.read_parquet(path)


def scaled(column: np.ndarray, log: bool) -> np.ndarray:
    """A hyperparameter on [0, 1]: min-max, on the log of it where LCBench sampled so."""
    x = np.log(column) if log else column.astype(float)
    return (x - x.min()) / (x.max() - x.min())


def grid(configs) -> dict[str, list]:
    """The table's space: 3 levels per hyperparameter, at quantiles of LCBench's sample."""
    space = {}
    for name, (short, log) in PARAMS.items():
        x = configs[name].to_numpy(dtype=float)
        q = np.quantile(np.log(x) if log else x, LEVELS)
        values = np.exp(q) if log else q
        space[short] = ([int(round(v)) for v in values] if name in INTEGER
                        else [float(f"{v:.3g}") for v in values])
    return space


def nearest(configs, space: dict) -> dict[tuple, int]:
    """Grid configuration -> the LCBench trial nearest to it (scaled Euclidean)."""
    cols = list(PARAMS)
    raw = configs[cols].to_numpy(dtype=float)
    points = np.column_stack([scaled(raw[:, j], PARAMS[c][1]) for j, c in enumerate(cols)])
    lows = [raw[:, j].min() for j in range(len(cols))]
    highs = [raw[:, j].max() for j in range(len(cols))]

    def scale(j: int, v: float) -> float:
        lo, hi, log = lows[j], highs[j], PARAMS[cols[j]][1]
        return ((np.log(v) - np.log(lo)) / (np.log(hi) - np.log(lo)) if log
                else (v - lo) / (hi - lo))

    out = {}
    for combo in itertools.product(*space.values()):
        target = np.array([scale(j, v) for j, v in enumerate(combo)])
        out[combo] = int(configs.index[np.argmin(((points - target) ** 2).sum(axis=1))])
    return out


def table(source: Path, dataset: str) -> dict:
    """One dataset's table in benchmarks/search.py's format."""
    configs = read(source, dataset, "config")
    metrics = read(source, dataset, "metrics")
    acc = metrics["Train/val_accuracy"].unstack("epoch").sort_index(axis=1)
    stamps = metrics["time"].unstack("epoch").sort_index(axis=1)
    epoch_s = stamps.diff(axis=1).iloc[:, 1:]  # epoch e's time: stamp e - stamp e-1
    acc = acc.iloc[:, 1:] / 100.0  # percent -> fraction; epoch 0 is before training
    space = grid(configs)
    rows = []
    for combo, trial in nearest(configs, space).items():
        seconds = epoch_s.loc[trial].to_numpy(dtype=float)
        rows.append({"config": dict(zip(space, combo)), "lcbench_id": trial,
                     "val_accuracy": [round(float(a), 6) for a in acc.loc[trial]],
                     "epoch_s": [round(float(s), 4) for s in seconds],
                     "energy_j": [round(float(s) * POWER_W, 3) for s in seconds]})
    return {"space": space, "epochs": len(rows[0]["val_accuracy"]), "source": SOURCE,
            "dataset": dataset, "benchmark": "LCBench (Zimmer et al. 2021), via LCBenchLite",
            "license": "Apache-2.0", "power_w": POWER_W, "rows": rows,
            "lcbench_configs_used": len({r["lcbench_id"] for r in rows}),
            "train_wall_s": None, "date": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT / "benchmarks" / "data" / "lcbench")
    parser.add_argument("--datasets", default="",
                        help="comma-separated; default: every dataset folder in --source")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "data")
    args = parser.parse_args()
    names = ([d for d in args.datasets.split(",") if d] or
             sorted(p.name for p in args.source.iterdir() if p.is_dir()))
    if not names:
        sys.exit(f"no dataset in {args.source}; name them with --datasets")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        data = table(args.source, name)
        path = args.out / f"lcbench_{name}.json"
        path.write_text(json.dumps(data) + "\n")
        print(f"{path}: {len(data['rows'])} configurations x {data['epochs']} epochs "
              f"({data['lcbench_configs_used']} distinct LCBench runs)")


if __name__ == "__main__":
    main()
