"""Synthetic sweeps in the original pipeline's run-folder format (tests/fixtures/seed-runs/),
with drivers whose effects are planted, so an analysis can be checked against the truth.

    power:     batch_size (bigger batches draw more power)
    energy:    batch_size and precision (float16 epochs are shorter)
    accuracy:  lr (best at 0.001)
    no effect: optimizer, preprocessing, lr_schedule, augmentation, partitioning

Used by tests/test_report_scale.py and benchmarks/report_scale.py. Writing 1000 folders
takes about a second: every row is computed with numpy, then each file written once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HEADER = "epoch,time,loss,accuracy,val_loss,val_accuracy,gpu_power_W,gpu_temp_C,gpu_util_%"
LEVELS = {
    "batch_size": [32, 64, 128, 256],
    "precision": ["float32", "float16"],
    "lr": [0.0001, 0.001, 0.01],
    "optimizer": ["Adam", "SGD", "RMSProp"],
    "preprocessing": ["None", "minmax", "standardization"],
    "lr_schedule": ["constant", "exponential"],
    "augmentation": ["None", "random"],
    "partitioning": ["70-15-15", "80-10-10"],
}
DRIVERS = {"power_w": {"batch_size"}, "energy_j": {"batch_size", "precision"},
           "accuracy": {"lr"}}
NULL = {"optimizer", "preprocessing", "lr_schedule", "augmentation", "partitioning"}
START = np.datetime64("2023-02-25T14:39:12")


def _params(rng: np.random.Generator, index: int) -> dict:
    """Run 000 is the baseline (every first value), the others drawn at random."""
    return {k: v[0] if index == 0 else v[rng.integers(len(v))] for k, v in LEVELS.items()}


def _yaml(params: dict, accuracy: float) -> str:
    # The original writes "seed : 22" (a space before the colon); kept, the reader copes.
    lines = ["model: resnet50", "internal: None", "optimizer_momentum: 0.0"]
    lines += [f"{k}: {v}" for k, v in params.items()]
    lines += ["seed : 22", "n_parameters: 23792612", f"test_accuracy: {accuracy:.4f}"]
    return "\n".join(lines) + "\n"


def _logs(rng: np.random.Generator, params: dict, accuracy: float, start: np.datetime64,
          epochs: int) -> str:
    bs = params["batch_size"]
    seconds = 30 * (0.6 if params["precision"] == "float16" else 1.0) * (64 / bs) ** 0.3
    steps = np.maximum(1, np.round(seconds + rng.normal(0, 1, epochs))).astype(int)
    stamps = start + np.concatenate([[0], np.cumsum(steps) + 40, [np.sum(steps) + 45]])
    power = 120 + 0.25 * bs + rng.normal(0, 4, epochs)
    curve = accuracy * (1 - np.exp(-3 * (np.arange(epochs) + 1) / epochs))
    rows = [f"pre,{_time(stamps[0])},0,0,0,0,100.80,41,0"]
    rows += [f"{e},{_time(stamps[e + 1])},{2 - curve[e]:.6f},{curve[e]:.6f},"
             f"{2.1 - curve[e]:.6f},{curve[e]:.6f},{power[e]:.2f},60,{rng.integers(0, 30)}"
             for e in range(epochs)]
    rows.append(f"post,{_time(stamps[-1])},0,0,0,0,113.14,60,0")
    return HEADER + "\n" + "\n".join(rows) + "\n"


def _time(stamp: np.datetime64) -> str:
    return str(stamp).replace("T", " ")


def write_sweep(folder: "str | Path", runs: int, epochs: int = 5, seed: int = 0) -> Path:
    """`runs` seed-format run folders 000, 001, ... under `folder`; returns `folder`."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    for i in range(runs):
        params = _params(rng, i)
        accuracy = 0.85 - 0.1 * abs(np.log10(params["lr"]) + 3) + rng.normal(0, 0.01)
        run = folder / f"{i:03d}"
        run.mkdir(parents=True)
        (run / "parameters.yaml").write_text(_yaml(params, accuracy))
        start = START + np.timedelta64(3600 * i, "s")
        (run / "logs.csv").write_text(_logs(rng, params, accuracy, start, epochs))
    return folder


if __name__ == "__main__":  # python tests/seedsweep.py DIR RUNS [EPOCHS]
    import sys

    write_sweep(sys.argv[1], int(sys.argv[2]), *(int(a) for a in sys.argv[3:4]))
