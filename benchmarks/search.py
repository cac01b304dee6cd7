"""Benchmark (not a test): random vs pareto search, with and without successive halving.

A tabular benchmark, as HPOBench's: every configuration of a small space is trained
once on the embedded digits, recording each epoch's validation accuracy and energy
("estimated:cpu-time": this VM has no GPU and no RAPL, so energy is CPU seconds times
W per core, labelled so). The strategies are then replayed on that one measured table:
a run "trains" by reading its configuration's row, and a run stopped at a rung costs
its per-epoch energy summed up to the rung. Every strategy thus meets the same noise
(one training per configuration), and it is compared on what it chose and when, not
on the luck of its own trainings; the replay costs seconds, so many seeds are cheap.

Strategies, same budget of runs, batches of `--batch` runs, seeds interleaved:
    random            space.py's seeded random configuration of (seed, i)
    random+halving    the same runs, halved at rungs 1, 3 (9 epochs, eta 3)
    pareto-S          Optuna's sampler S proposes after the random start
    pareto-S+halving  both
Sweep energy is counted as runs end: within a batch, the run that spent less ends
first. The front is that of done runs (a stopped run is never recommended).

Figures per strategy, medians over seeds:
    hv               hypervolume of the done runs' (accuracy, energy) front, as a fraction
                     of the whole table's front (1.0: the true front found);
    e90/e95/e100     sweep energy when hv first reaches 90/95/100 % of random search's
                     final hv (median over seeds), as a fraction of random's total energy;
    rec gap          the recommendation (lowest energy within 0.02 of the best accuracy,
                     recommend.recommend) against the true front: its energy excess over the
                     cheapest true-front configuration at least as accurate (0: on the
                     front), and its accuracy shortfall below the best true-front
                     configuration that costs no more;
    propose CPU s    CPU seconds the proposals themselves took (not in the sweep energy).

With `--table PATH` (any table in search_table.json's format: `space`, `epochs`, `rows` of
`config` with per-epoch `val_accuracy` and `energy_j`, e.g. LCBench's learning curves from
fetch_learning_curves.py) it compares the halving rules of search_rules.py instead, each
strategy under random search's energy as its budget, and names the default.

Usage: python benchmarks/search.py [--seeds 5] [--runs 24] [--batch 4] [--retrain]
       python benchmarks/search.py --table PATH [--runs 96] [--batch 8]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import search_rules  # noqa: E402  (beside this file)

from greenscreen_pipeline.search import front, halving, propose  # noqa: E402
from greenscreen_pipeline.space import SweepConfig  # noqa: E402

SPACE = {"net": ["mlp", "cnn"], "width": [16, 64, 256], "batch": [32, 256],
         "lr": [0.001, 0.01], "opt": ["adam", "sgd"]}
EPOCHS, ETA, FLOOR = 9, 3, 0.02
MAX_RUNS_X = 8  # with an energy budget, a sweep may run this many times `--runs` at most
TABLE = ROOT / "benchmarks" / "results" / "search_table.json"


# -- the ground truth: every configuration trained once -------------------------------------
def build(config: dict):
    import keras

    width = config["width"]
    layers = [keras.Input((8, 8, 1))]
    if config["net"] == "cnn":
        layers += [keras.layers.Conv2D(width // 4, 3, padding="same", activation="relu"),
                   keras.layers.MaxPooling2D()]
    layers += [keras.layers.Flatten(), keras.layers.Dense(width, activation="relu"),
               keras.layers.Dense(width, activation="relu"),
               keras.layers.Dense(10, activation="softmax")]
    model = keras.Sequential(layers)
    opt = (keras.optimizers.Adam(config["lr"]) if config["opt"] == "adam"
           else keras.optimizers.SGD(config["lr"], momentum=0.9))
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
    return model


def train(config: dict, split) -> dict:
    """One configuration's learning curve: per-epoch val accuracy and energy."""
    import keras

    from greenscreen import SMICallback

    x_tr, x_va, y_tr, y_va = split
    keras.utils.set_random_seed(0)
    smi = SMICallback(log_dir=None, source="estimate", interval=0.05)
    h = build(config).fit(x_tr, y_tr, validation_data=(x_va, y_va), epochs=EPOCHS,
                          batch_size=config["batch"], verbose=0, callbacks=[smi])
    return {"config": config, "val_accuracy": h.history["val_accuracy"],
            "energy_j": h.history["energy_j"], "epoch_s": h.history["epoch_s"],
            "source": smi.summary.get("source")}


def ground_truth() -> dict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x_tr, x_va, y_tr, y_va = train_test_split((d.images / 16.0)[..., None].astype("float32"),
                                              d.target, test_size=0.2, stratify=d.target,
                                              random_state=0)
    # Each digit also shifted a pixel left and right: three times the steps per epoch, so
    # that the epochs, not the first epoch's tracing, are most of a run's energy.
    x_tr = np.concatenate([x_tr, np.roll(x_tr, 1, axis=2), np.roll(x_tr, -1, axis=2)])
    split = (x_tr, x_va, np.tile(y_tr, 3), y_va)
    configs = [dict(zip(SPACE, values)) for values in itertools.product(*SPACE.values())]
    rows, t0 = [], time.time()
    for i, config in enumerate(configs):
        rows.append(train(config, split))
        print(f"{i + 1}/{len(configs)} {config}: acc {rows[-1]['val_accuracy'][-1]:.3f}, "
              f"{sum(rows[-1]['energy_j']):.1f} J", flush=True)
    return {"space": SPACE, "epochs": EPOCHS, "source": rows[0]["source"], "rows": rows,
            "train_wall_s": round(time.time() - t0, 1), "date": time.strftime("%Y-%m-%d")}


# -- the replay -------------------------------------------------------------------------------
class Table:
    """The measured table: a configuration's curve of (accuracy, energy so far)."""

    def __init__(self, data: dict) -> None:
        self.space, self.epochs = data["space"], data["epochs"]
        self.rows = {self.key(r["config"]): r for r in data["rows"]}
        acc = [r["val_accuracy"][-1] for r in data["rows"]]
        energy = [sum(r["energy_j"]) for r in data["rows"]]
        # The reference point is the table's worst accuracy and highest energy, so every
        # configuration adds to the hypervolume and the true front's is the upper bound.
        self.reference = (min(acc), max(energy))
        if min(energy) == max(energy):  # every run costs the same (TaskSet's tables): any
            # reference above that energy gives the same normalised hv, the best found
            self.reference = (min(acc), 2 * max(energy))
        on = front.pareto_mask(acc, energy)
        self.front = [(a, e) for a, e, k in zip(acc, energy, on) if k]
        self.true_hv = front.hypervolume(acc, energy, self.reference)

    def key(self, config: dict) -> tuple:
        return tuple(config[d] for d in self.space)

    def curve(self, config: dict) -> list[tuple[float, float]]:
        row = self.rows[self.key(config)]
        return list(zip(row["val_accuracy"], np.cumsum(row["energy_j"]).tolist()))

    def hv(self, points: list[tuple[float, float]]) -> float:
        if not points:
            return 0.0
        acc, energy = zip(*points)
        return front.hypervolume(acc, energy, self.reference) / self.true_hv

    def gap(self, acc: float, energy: float) -> tuple[float, float]:
        """(energy excess, accuracy shortfall) of a point against the true front."""
        cheapest = min(e for a, e in self.front if a >= acc)
        best = max((a for a, e in self.front if e <= energy), default=acc)
        return energy / cheapest - 1.0, max(0.0, best - acc)


def replay(table: Table, strategy: dict, seed: int, runs: int, batch: int,
           budget_j: float | None = None) -> dict:
    """One sweep of `strategy` on the table: its events and figures.

    Without `budget_j`, `runs` runs; with it, batches until the energy spent reaches it
    (as settings.budget, checked before each batch), at most MAX_RUNS_X x `runs` runs.
    """
    space, epochs = table.space, table.epochs
    sweep = SweepConfig("benchmark", {"seed": seed}, space)
    n_startup = propose.default_startup(runs, batch)
    rule = strategy.get("rule") or (halving.Rule(ETA) if strategy["halving"] else None)
    results, curves, events, cpu, trained = [], {}, [], 0.0, {}
    limit = runs if budget_j is None else MAX_RUNS_X * runs
    for b in range(math.ceil(limit / batch)):
        if budget_j is not None and sum(r.energy_j for r in events) >= budget_j:
            break
        idx = range(b * batch, min(limit, (b + 1) * batch))
        c0 = time.process_time()
        if strategy["search"] == "random":
            configs = {i: sweep.run(i) for i in idx}
        else:
            configs = propose.propose(space, results, idx, seed=seed, batch=b,
                                      random_run=sweep.run, n_startup=n_startup,
                                      sampler=strategy["sampler"], batch_size=batch,
                                      stopped_as=strategy.get("stopped_as", "pruned"))
        cpu += time.process_time() - c0
        curves.update({i: table.curve(configs[i]) for i in idx})
        trained = (halving.replay(curves, batch, rule, scope=strategy.get("scope", "sweep"),
                                  known=trained if strategy.get("scope") != "batch" else None)
                   if rule else {i: epochs for i in curves})
        ended = []
        for i in idx:
            acc, energy = curves[i][trained[i] - 1]
            state = "done" if trained[i] == epochs else "stopped"
            results.append(propose.Result(i, configs[i], state, acc, energy))
            ended.append(results[-1])
        events += sorted(ended, key=lambda r: r.energy_j)  # the cheaper run ends first
    return summarise_sweep(table, events, cpu)


def summarise_sweep(table: Table, events: list, cpu: float) -> dict:
    spent, done, curve = 0.0, [], []
    for r in events:
        spent += r.energy_j
        if r.state == "done":
            done.append((r.objective, r.energy_j))
        curve.append((round(spent, 3), round(table.hv(done), 5)))
    best = max(a for a, _ in done)
    rec = min((p for p in done if p[0] >= best - FLOOR), key=lambda p: p[1])
    excess, shortfall = table.gap(*rec)
    return {"curve": curve, "energy_j": spent, "hv": curve[-1][1], "propose_cpu_s": cpu,
            "stopped": sum(r.state == "stopped" for r in events), "runs": len(events),
            "rec": {"accuracy": rec[0], "energy_j": rec[1], "energy_excess": excess,
                    "accuracy_shortfall": shortfall}}


def strategies(samplers: list[str], gp_seeds: int) -> dict:
    out = {"random": {"search": "random", "halving": False},
           "random+halving": {"search": "random", "halving": True}}
    for s in samplers:
        out[f"pareto-{s}"] = {"search": "pareto", "sampler": s, "halving": False}
        out[f"pareto-{s}+halving"] = {"search": "pareto", "sampler": s, "halving": True}
    # ablations: how a stopped run is told, and a rung judged within its batch alone
    out["pareto-tpe+halving, stopped told as partial"] = {
        "search": "pareto", "sampler": "tpe", "halving": True, "stopped_as": "partial"}
    out["random+halving, rung peers = batch"] = {"search": "random", "halving": True,
                                                 "scope": "batch"}
    if "gp" in samplers:  # its asks take seconds each: fewer seeds, halving only
        out.pop("pareto-gp")
        out["pareto-gp+halving"]["seeds"] = gp_seeds
    return out


# -- the figures -------------------------------------------------------------------------------
def median(values: list) -> float:
    return statistics.median(values) if values else math.nan


def figures(sweeps: dict, table: Table) -> dict:
    """Medians over seeds per strategy, with random search as the yardstick."""
    random_hv = median([s["hv"] for s in sweeps["random"]])
    random_energy = median([s["energy_j"] for s in sweeps["random"]])
    out = {}
    for name, runs in sweeps.items():
        row = {"seeds": len(runs), "hv": median([s["hv"] for s in runs]),
               "energy_j": median([s["energy_j"] for s in runs]),
               "energy_ratio": median([s["energy_j"] for s in runs]) / random_energy,
               "stopped": median([s["stopped"] for s in runs]),
               "propose_cpu_s": median([s["propose_cpu_s"] for s in runs]),
               "rec_energy_excess": median([s["rec"]["energy_excess"] for s in runs]),
               "rec_accuracy_shortfall": median([s["rec"]["accuracy_shortfall"] for s in runs]),
               "rec_on_front": f"{sum(on_front(s['rec']) for s in runs)}/{len(runs)}"}
        for pct in (90, 95, 100):
            reached = [search_rules.energy_to(s["curve"], pct / 100 * random_hv) for s in runs]
            row[f"e{pct}"] = median(reached) / random_energy
            row[f"reached{pct}"] = f"{sum(math.isfinite(e) for e in reached)}/{len(runs)}"
        row["hv_at"] = {f"{f:.2f}": median([hv_at(s["curve"], f * random_energy) for s in runs])
                        for f in (0.1, 0.2, 1 / 3, 0.5, 1.0)}
        out[name] = row
    return {"random_final_hv": random_hv, "random_energy_j": random_energy,
            "strategies": out}


def on_front(rec: dict) -> bool:
    return rec["energy_excess"] <= 1e-9 and rec["accuracy_shortfall"] <= 1e-9


def hv_at(curve: list, energy: float) -> float:
    return max((hv for e, hv in curve if e <= energy), default=0.0)


def markdown(fig: dict, source: str) -> str:
    head = ("| strategy | seeds | hv | energy (x random) | e90 | e95 | e100 (reached) "
            "| hv at 1/3 of random's energy | stopped | rec on true front | rec energy excess "
            "| rec acc shortfall | propose CPU s |\n|" + "---|" * 13 + "\n")
    lines = []
    for name, r in fig["strategies"].items():
        lines.append(f"| {name} | {r['seeds']} | {r['hv']:.3f} | {r['energy_ratio']:.2f} | "
                     f"{r['e90']:.2f} | {r['e95']:.2f} | {r['e100']:.2f} ({r['reached100']}) | "
                     f"{r['hv_at']['0.33']:.3f} | {r['stopped']:g} | {r['rec_on_front']} | "
                     f"{r['rec_energy_excess']:.2f} | {r['rec_accuracy_shortfall']:.3f} | "
                     f"{r['propose_cpu_s']:.1f} |")
    return (f"Energy: {source}. Random search's final hv (median): "
            f"{fig['random_final_hv']:.3f}; its energy: {fig['random_energy_j']:.0f} J.\n\n"
            + head + "\n".join(lines) + "\n")


def replay_seed(job: tuple) -> dict:
    """One seed of every strategy: random search first, its energy the others' budget."""
    table, plan, seed, runs, batch = job
    out = {"random": replay(table, plan["random"], seed, runs, batch)}
    for name in [n for n in plan if n != "random"]:
        out[name] = replay(table, plan[name], seed, runs, batch, out["random"]["energy_j"])
    return out


def compare_rules(args: argparse.Namespace, data: dict) -> None:
    """--table: every strategy of search_rules.plan(), random search's energy per seed as
    the others' budget; writes the sweeps, the figures and the default's name."""
    table, plan = Table(data), search_rules.plan(rules=args.rules)
    sweeps: dict = {name: [] for name in plan}
    t0 = time.time()
    jobs = [(table, plan, seed, args.runs, args.batch) for seed in range(args.seeds)]
    # Seeds are independent: one process per core (the proposals are most of the time).
    with ProcessPoolExecutor(max(1, min(args.jobs, args.seeds))) as pool:
        for seed, result in enumerate(pool.map(replay_seed, jobs)):
            for name in plan:
                sweeps[name].append(result[name])
            print(f"seed {seed} replayed ({time.time() - t0:.0f} s)", flush=True)
    fig, pair = figures(sweeps, table), search_rules.pairs(sweeps)
    default = search_rules.default_name(plan)
    out = Path(args.out or ROOT / "benchmarks" / "results" /
               f"search_rules_{Path(args.table).stem}.json")
    report = {"benchmark": "search rules", "date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
              "command": " ".join(sys.argv), "replay_wall_s": round(time.time() - t0, 1),
              "table": {"path": str(args.table), "configs": len(data["rows"]),
                        "epochs": data["epochs"], "space": data["space"],
                        "energy_source": data["source"],
                        "dataset": data.get("dataset"), "true_front": table.front},
              "runs_random": args.runs, "batch": args.batch, "max_runs_x": MAX_RUNS_X,
              "default": default, "rules": search_rules.rules_json(plan),
              "figures": fig, "pairs": pair, "sweeps": sweeps}
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{out}; energy: {data['source']}; default: {default}")
    print(search_rules.markdown(fig, pair, default))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--gp-seeds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--samplers", default="tpe,nsga2,gp")
    parser.add_argument("--retrain", action="store_true", help="train the table again")
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--epochs-only", action="store_true",
                        help="sensitivity: each run's first epoch costs as its later ones (no "
                             "tracing or set-up cost), as when epochs dominate a run")
    parser.add_argument("--first-epoch-excess-scale", type=float, default=None,
                        help="re-estimate: each run's first-epoch excess over its later epochs "
                             "scaled by this (measured: 0.27 with a warm JAX compilation cache, "
                             "benchmarks/warm_workers.py --only cache)")
    parser.add_argument("--figures-only", action="store_true",
                        help="recompute the figures of --out's sweeps, replaying nothing")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="--table: seeds replayed at once")
    parser.add_argument("--table", type=Path, default=None,
                        help="replay this table (any in search_table.json's format) and compare "
                             "the halving rules of search_rules.py under an energy budget")
    parser.add_argument("--rules", type=lambda text: [r.strip() for r in text.split(",")],
                        default=None, help="--table: only these of search_rules.RULES "
                        "(comma-separated names, e.g. 'halving,nds'); default: all")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/search.json, "
                        "or search_rules_<table name>.json with --table")
    args = parser.parse_args()
    if args.table is not None:
        return compare_rules(args, search_rules.load(args.table, args))
    args.out = args.out or "benchmarks/results/search.json"
    if args.retrain or not TABLE.exists():
        TABLE.write_text(json.dumps(ground_truth(), indent=1) + "\n")
    if args.train_only:
        return
    data = search_rules.load(TABLE, args)
    table = Table(data)
    if args.figures_only:
        report = json.loads(Path(args.out).read_text())
        report["figures"] = figures(report["sweeps"], table)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
        print(markdown(report["figures"], data["source"]))
        return
    plan = strategies(args.samplers.split(","), args.gp_seeds)
    sweeps: dict = {name: [] for name in plan}
    t0 = time.time()
    for seed in range(args.seeds):
        names = list(plan)[seed % len(plan):] + list(plan)[:seed % len(plan)]  # interleaved
        for name in names:
            if seed < plan[name].get("seeds", args.seeds):
                sweeps[name].append(replay(table, plan[name], seed, args.runs, args.batch))
        print(f"seed {seed} replayed ({time.time() - t0:.0f} s)", flush=True)
    fig = figures(sweeps, table)
    report = {"benchmark": "search", "date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
              "command": " ".join(sys.argv), "energy_source": data["source"],
              "epochs_only": args.epochs_only,
              "first_epoch_excess_scale": args.first_epoch_excess_scale,
              "table": {"configs": len(data["rows"]), "epochs": data["epochs"],
                        "space": data["space"], "train_wall_s": data["train_wall_s"],
                        "date": data["date"], "true_front": table.front,
                        "reference": table.reference},
              "runs": args.runs, "batch": args.batch, "eta": ETA, "floor": FLOOR,
              "figures": fig, "sweeps": sweeps}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(markdown(fig, data["source"]))


if __name__ == "__main__":
    main()
