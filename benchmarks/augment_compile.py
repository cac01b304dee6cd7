"""Benchmark (not a test): what a run's augmentation costs before its first step on JAX.

The pipeline augments each training batch with Keras preprocessing layers
(`greenscreen_pipeline.run.batches.augmenter`). On JAX an eager call compiles each of its
operations for the batch's shape, so the first batch of every shape (a run's full batches
and its last, shorter one) pays for them. Measured here, each mode in a fresh process (no
compilation cache), interleaved, `--repeats` times, medians:

- eager: the layers called eagerly, as every run augmented until 2026-12-06;
- jit O2 / jit O0: the same layers in one `jax.jit` program per shape (the seed state
  passed in and out through `keras.StatelessScope`), compiled at XLA's default
  optimisation level or at level 0 (JAX only);
- pipeline: the pipeline's augmenter as it is (on JAX: MixUp and CutMix as jit O0 on CPU,
  the random transforms eager).

Per mode, kind (random, mixup, cutmix) and batch shape: the first call (s) and the median
of the next `--calls` calls (ms).

Usage: KERAS_BACKEND=jax python benchmarks/augment_compile.py [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("random", "mixup", "cutmix")
SHAPES = ((32, 8, 8, 1), (128, 32, 32, 3))  # digits' batch of 32; a CIFAR-10 batch of 128


def layers_for(kind: str, seed: int) -> tuple[list, object]:
    """The pipeline's layers for `kind`, and a function (x, y) -> (x, y) calling them."""
    import keras

    work = keras.config.floatx()
    if kind == "random":
        layers = [keras.layers.RandomFlip("horizontal", seed=seed, dtype=work),
                  keras.layers.RandomRotation(0.05, seed=seed, dtype=work),
                  keras.layers.RandomTranslation(0.1, 0.1, seed=seed, dtype=work)]
    else:
        cls = keras.layers.MixUp if kind == "mixup" else keras.layers.CutMix
        layers = [cls(seed=seed, dtype=work)]

    def call(x, y):
        if kind == "random":
            for layer in layers:
                x = layer(x, training=True)
            return x, y
        out = layers[0]({"images": x, "labels": y}, training=True)
        return out["images"], out["labels"]

    return layers, call


def eager(kind: str, seed: int):
    """The layers called eagerly, NumPy out."""
    import keras

    _, call = layers_for(kind, seed)
    return lambda x, y: tuple(keras.ops.convert_to_numpy(v) for v in call(x, y))


def jitted(kind: str, seed: int, level: int | None):
    """The layers for `kind` in one jax.jit program per shape."""
    import jax
    import keras
    import numpy as np

    layers, call = layers_for(kind, seed)
    states = [layer.generator.state for layer in layers]

    def stateless(x, y, values):
        with keras.StatelessScope(state_mapping=list(zip(states, values))) as scope:
            x, y = call(x, y)
            return x, y, [scope.get_current_value(s) for s in states]

    options = {} if level is None else {"xla_backend_optimization_level": level}
    program = jax.jit(stateless, compiler_options=options)

    def apply(x, y):
        x, y, values = program(x, y, [s.value for s in states])
        for state, value in zip(states, values):
            state.assign(value)
        return np.asarray(x), np.asarray(y)

    return apply


def child(mode: str, calls: int) -> list[dict]:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from greenscreen_pipeline.run.batches import augmenter

    def pipeline(apply):  # the pipeline's call names the batch: one number per call
        batch = iter(range(10**9))
        return lambda x, y: apply(x, y, next(batch))

    rng, rows = np.random.default_rng(0), []
    for shape in SHAPES:
        x = rng.random(shape, dtype=np.float32)
        y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, shape[0])]
        for kind in KINDS:
            f = (pipeline(augmenter(kind, 1, "float32")) if mode == "pipeline" else
                 eager(kind, 1) if mode == "eager" else
                 jitted(kind, 1, 0 if mode == "jit O0" else None))
            began = time.perf_counter()
            f(x, y)
            first = time.perf_counter() - began
            times = []
            for _ in range(calls):
                began = time.perf_counter()
                f(x, y)
                times.append(time.perf_counter() - began)
            rows.append({"mode": mode, "kind": kind, "shape": list(shape),
                         "first_s": first, "later_ms": 1000 * statistics.median(times)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--out")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.calls)))
        return
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    modes = ["eager", "jit O2", "jit O0", "pipeline"] if backend == "jax" else ["eager",
                                                                                  "pipeline"]
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    runs = []
    for _ in range(args.repeats):
        for mode in modes:  # interleaved, each in a fresh process
            done = subprocess.run([sys.executable, __file__, "--child", mode, "--calls",
                                   str(args.calls)], env=env, capture_output=True,
                                  text=True, check=True)
            runs += json.loads(done.stdout.strip().splitlines()[-1])
    table = {}
    for row in runs:
        key = f"{row['mode']} {row['kind']} {'x'.join(map(str, row['shape']))}"
        table.setdefault(key, []).append(row)
    medians = {key: {"first_s": statistics.median(r["first_s"] for r in rows),
                     "later_ms": statistics.median(r["later_ms"] for r in rows)}
               for key, rows in table.items()}
    emit({"benchmark": "augment_compile", "backend": backend, "cpus": os.cpu_count(),
          "date": time.strftime("%Y-%m-%d"), "repeats": args.repeats, "medians": medians,
          "runs": runs}, args.out)


if __name__ == "__main__":
    main()
