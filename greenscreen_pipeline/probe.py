"""The probe: your own code called once, before any run, so that a mistake in your data or
model is one message at `check` time instead of every run failing alike.

With the sweep's first configuration that can run (run 000's, as a rule), and again with
each other dataset or model of your own in the space, the probe calls your dataset
function through the run's own rules (`run/user_data.py`: splits, lengths, dtypes, labels
against num_classes and the loss); checks what a run meets too late (values that are not
finite; a class that never occurs in the train split: labels 1..10 make an 11-class model
with an empty class 0); builds your model as a run does (`run/training.build_model`),
checks its output against the classes or outputs (`run/models.check_outputs`) and trains
one small batch of the run's own batches. Each mistake is one message naming your
function, what it found and what is allowed.

`check` probes in its own process; `sweep local` (and `all`) in the first warm worker,
before its first run, so that the sweep imports the backend once (`executors/workers.py`);
`sweep ray` and `sweep slurm` in a child process (`python -m greenscreen_pipeline.probe`)
on the submitting machine, gone before any run starts. Built-in datasets with built-in
models are not probed: they need none, and loading a large built-in dataset would slow
every `check`. Nothing here imports Keras until a probe starts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import space, user_code
from .errors import UsageError
from .objective import Objective
from .probe_data import data_mistakes, describe, dict_hint, params_hint, unread_keys

SMALL_BATCH = 8  # samples of the one training step: enough for BatchNormalization
LOOKED_AT = 50  # configurations looked at for the first one that can run


class ProbeFailed(UsageError):
    """The probe found mistakes in your code or data; each names the function."""

    def __init__(self, mistakes: list[str], probed: str, seconds: float) -> None:
        self.mistakes, self.probed, self.seconds = mistakes, probed, seconds
        found = "\n  ".join(mistakes)
        super().__init__(f"{found}\n  (the probe of {probed}, {seconds:.1f} s; nothing was "
                         "trained; --no-probe skips the probe)")


@dataclass
class Probed:
    """What the probe checked, with which configuration, and how long it took.

    Attributes:
        probed: The configuration, e.g. "run 000's configuration".
        checked: One line per dataset and per model of your own: what was checked.
        seconds: Wall-clock seconds of the probe.
        skipped: Why nothing was probed, or "".
        mistakes: What was wrong (then `ProbeFailed` is raised from it).
    """

    probed: str = ""
    checked: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str = ""
    mistakes: list[str] = field(default_factory=list)

    def text(self) -> str:
        """What the console says."""
        if self.skipped:
            return f"no probe: {self.skipped}"
        return (f"probed your code with {self.probed} in {self.seconds:.1f} s:\n  "
                + "\n  ".join(self.checked))

    def raise_mistakes(self) -> "Probed":
        if self.mistakes:
            raise ProbeFailed(self.mistakes, self.probed, self.seconds)
        return self


def needs_no_probe(config: space.SweepConfig) -> str:
    """Why `config` needs no probe, or "" when it names a dataset or model of your own."""
    if config.settings["train"]:
        return ("settings.train runs your own loop, which only a run calls (its data and "
                "model are yours to build)")
    if not any(user_code.is_entry(v) for dim in space.ENTRY_DIMENSIONS
               for v in config.space[dim]):
        return "config.yaml names no dataset or model of your own (the built-in ones need none)"
    return ""


def probe(config: space.SweepConfig) -> Probed:
    """Probes your code with the sweep's first configuration that can run.

    Raises:
        ProbeFailed: every mistake found, each naming your function.
    """
    why = needs_no_probe(config)
    if why:
        return Probed(skipped=why)
    start = time.perf_counter()
    from .run import own_modules, reset

    reset.remember_keras_settings()  # before your code can change them
    try:
        index, cfg, skipped = _first_runnable(config)
        if cfg is None:
            looked = min(config.settings["runs"], LOOKED_AT)
            return Probed(skipped=f"the first {looked} configuration(s) are all skipped, "
                                  f"so no run calls your code ({skipped})")
        result = Probed(f"run {index:03d}'s configuration")
        cache: dict = {}
        for what, target in _targets(config, cfg):
            checked, mistakes = _probe_one(config, index, target, cache)
            result.checked += [c + what for c in checked if c + what not in result.checked]
            result.mistakes += [m for m in mistakes if m not in result.mistakes]
    finally:
        reset.reset_keras()  # the dtype policy and session back, as a new process has them
        own_modules.forget([config.folder])  # a later import reads your code afresh
    result.seconds = time.perf_counter() - start
    return result.raise_mistakes()


def _first_runnable(config: space.SweepConfig) -> tuple[int, dict | None, str]:
    """(index, configuration) of the first run that is not skipped, with the last reason."""
    from .run import recipe

    reason = ""
    for index in range(min(config.settings["runs"], LOOKED_AT)):
        cfg = config.run(index)
        reason = recipe.skip_reason(cfg) or ""
        if not reason:
            return index, cfg, ""
    return -1, None, reason


def _targets(config: space.SweepConfig, cfg: dict) -> list[tuple[str, dict]]:
    """`cfg`, then `cfg` with each other dataset or model of your own in the space."""
    targets = [("", cfg)]
    for dim in space.ENTRY_DIMENSIONS:
        for value in config.space[dim]:
            if user_code.is_entry(value) and value != cfg[dim]:
                targets.append((f" (with {dim} {value})", {**cfg, dim: value}))
    return targets


def _probe_one(config: space.SweepConfig, index: int, cfg: dict,
               cache: dict) -> tuple[list[str], list[str]]:
    """(what was checked, mistakes) of one configuration; data read once per dataset."""
    from .run import recipe, seeding, training

    settings, seed = config.settings, config.settings["seed"]
    objective = Objective.from_settings(settings)
    params = {"run": index, **cfg, "seed": seed, "epochs": settings["epochs"]}
    yours = user_code.TrackedParams(params)
    seeding.seed_run(seed + index)
    dtype = recipe.set_precision(cfg["precision"])
    name = cfg["dataset"]
    if name not in cache:
        cache[name] = _read(cfg, settings, yours, objective, config, seed)
    prepared, read, checked, mistakes = cache[name]
    if mistakes:
        return checked, mistakes
    try:
        run_data = training.batch_data(prepared, cfg, read, objective, dtype, seed + index)
    except training.RunSkipped as exc:
        return checked + [f"{cfg['model']}: not built, the configuration is skipped ({exc})"], []
    model_checked, model_mistakes = _model(yours, run_data, cfg, objective, config,
                                           settings["epochs"])
    return checked + model_checked, model_mistakes


def _read(cfg: dict, settings: dict, yours: user_code.TrackedParams, objective: Objective,
          config: space.SweepConfig, seed: int) -> tuple:
    """(prepared data, params read, checked, mistakes) of the configuration's dataset: your
    function's call, then the pipeline's use of what it returned, each named as such.
    Mistakes that a run would not stop at (a dict key near a known one) come with data."""
    from .run import training, user_data
    from .run.data import DataError

    name = cfg["dataset"]
    if not user_code.is_entry(name):
        try:
            prepared = training.read_data(cfg, settings, yours, objective, seed, config.folder)
        except DataError as exc:
            return None, set(), [], [str(exc)]
        return (prepared, set(yours.read), [describe(prepared, objective, name, cfg)],
                data_mistakes(prepared, objective, name))
    key = key_path(config, "dataset", name)
    try:
        function = user_code.load(name, "dataset", config.folder)
    except user_code.EntryError as exc:
        return None, set(), [], [f"{name}: {exc}{at(key)}"]
    defined = user_code.defined_at(function)
    try:
        given = function(yours)
    except (Exception, SystemExit) as exc:  # your function raised (or called sys.exit)
        return None, set(), [], [raised(f"{name}(params)", exc) + params_hint(exc, yours)
                                 + at(key)]
    try:
        prepared = user_data.prepare(given, objective, cfg["partitioning"], seed, name)
    except DataError as exc:  # the run's rules: what it returned, and what is allowed
        text = str(exc) if str(exc).startswith(name) else f"{name}(): {exc}"
        return None, set(), [], [text + dict_hint(given) + at(key, defined)]
    except Exception as exc:  # the pipeline's own step on what your function returned
        return None, set(), [], [raised(f"the pipeline's use of what {name}(params) returned",
                                        exc) + at(key, defined)]
    mistakes = [m + at(key, defined) for m in data_mistakes(prepared, objective, name)
                + unread_keys(given, name)]
    return prepared, set(yours.read), [describe(prepared, objective, name, cfg)], mistakes


def _model(yours, run_data, cfg: dict, objective: Objective, config: space.SweepConfig,
           epochs: int) -> tuple[list[str], list[str]]:
    """Builds and compiles the run's model, checks its output, trains one small batch."""
    from .run import models, training

    name = cfg["model"]
    call = f"{name}({run_data.input_shape}, {run_data.num_classes}, params)"
    key, defined = key_path(config, "model", name), ""
    if user_code.is_entry(name):
        try:
            defined = user_code.defined_at(user_code.load(name, "model", config.folder))
        except user_code.EntryError as exc:
            return [], [f"{name}: {exc}{at(key)}"]
    try:
        built = training.build_model(yours, run_data, epochs, config.folder, objective)
    except (models.ModelError, models.NotAModel) as exc:  # the message names your function
        return [], [f"{getattr(exc, 'plain', exc)}{at(key, defined)}"]
    except (Exception, SystemExit) as exc:
        return [], [raised(call, exc) + params_hint(exc, yours) + at(key, defined, exc)]
    x, y = small_batch(run_data.train)
    stale = cfg["method"] == "gated" and cfg["gating_scoring"] == "stale"  # x: (x, indices)
    try:
        output = models.shape_of(built.net(x[0] if stale else x, training=False))
        models.check_outputs(output, run_data.num_classes, objective.classification, name)
        history = built.model.fit(x, y, batch_size=len(y), epochs=1, verbose=0, shuffle=False)
    except models.ModelError as exc:
        return [], [f"{exc}{at(key, defined)}"]
    except (Exception, SystemExit) as exc:
        return [], [raised(f"one training step of {name} on {len(y)} samples", exc)
                    + at(key, defined, exc)]
    loss = history.history["loss"][-1]
    if not math.isfinite(loss):
        return [], [f"{name}: one training step on {len(y)} samples gave loss {loss}; allowed: "
                    "a finite loss (look for NaN in the data or an output that cannot fit "
                    f"{objective.loss})" + at(key, defined)]
    return [f"{call}: output {output}, fits {objective.loss}; one training step on "
            f"{len(y)} samples, loss {loss:.4g}"], []


def small_batch(batches) -> tuple:
    """Up to SMALL_BATCH samples of the first training batch, as the run gets it."""
    import keras

    from .run import user_data

    x, y = user_data.first_batch(batches, "the train split")
    return keras.tree.map_structure(lambda a: a[:SMALL_BATCH], x), y[:SMALL_BATCH]


def raised(call: str, exc: BaseException) -> str:
    """'<call> raised <Type>: <message> (<your file>:<line>)': where in your code, if the
    traceback passes through it."""
    where = _your_line(exc)
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (f"{call} raised {type(exc).__name__}: {(lines[0] if lines else '')[:300]}"
            + (f" ({where})" if where else ""))


def _your_line(exc: BaseException) -> str:
    """'file:line' of the last frame of your code in `exc`'s traceback, or ""."""
    from .executors.progress import NOT_YOURS  # where a failed run's reason says it too

    frames = traceback.extract_tb(exc.__traceback__)
    yours = [f for f in frames if not any(part in f.filename for part in NOT_YOURS)]
    return f"{yours[-1].filename}:{yours[-1].lineno}" if yours else ""


def key_path(config: space.SweepConfig, dim: str, value: str) -> str:
    """Where config.yaml names `value`: 'configuration.dataset.values[0]', or "" (built in)."""
    values = config.space.get(dim)
    if not user_code.is_entry(value) or not isinstance(values, list) or value not in values:
        return ""
    return f"configuration.{dim}.values[{values.index(value)}]"


def at(key: str, defined: str = "", exc: BaseException | None = None) -> str:
    """' (<key path>; def at <file>:<line>)': where config.yaml names your function and
    where it is defined; the def's line is left out where the message names a line of yours
    (`exc` passes through your code)."""
    parts = [key] if key else []
    if defined and not (exc is not None and _your_line(exc)):
        parts.append(f"def at {defined}")
    return f" ({'; '.join(parts)})" if parts else ""


def in_child(config: space.SweepConfig, gpu: str | None = None) -> Probed:
    """`probe(config)` in a child process that exits before any worker starts (the
    backend it loads holds no memory of a GPU the runs need); `gpu`: the one it sees.

    Raises:
        ProbeFailed: the mistakes the child found.
        UsageError: the child ended without a result.
    """
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": gpu} if gpu else {})}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="greenscreen-probe-") as tmp:
        out = Path(tmp) / "probe.json"
        done = subprocess.run(
            [sys.executable, "-m", "greenscreen_pipeline.probe", "--config", config.path,
             "--runs", str(config.settings["runs"]), "--epochs", str(config.settings["epochs"]),
             "--out", str(out)], env=env, capture_output=True, text=True, check=False)
        if not out.exists():
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            raise UsageError(f"the probe of your code ended without a result (exit code "
                             f"{done.returncode}): {tail or 'no output'}; --no-probe skips it")
        return Probed(**json.loads(out.read_text())).raise_mistakes()


def result_of(config_path: str, runs: int, epochs: int) -> dict:
    """`probe` of the config at `config_path`, as the JSON a child or a warm worker answers."""
    config = space.load(config_path, {"runs": runs, "epochs": epochs})
    try:
        return asdict(probe(config))
    except ProbeFailed as exc:
        return asdict(Probed(exc.probed, [], exc.seconds, "", exc.mistakes))


def main(argv: list[str] | None = None) -> int:
    """The child `in_child` starts: probes and writes what it found as JSON to --out."""
    parser = argparse.ArgumentParser(prog="python -m greenscreen_pipeline.probe")
    for option, kind in (("--config", str), ("--runs", int), ("--epochs", int), ("--out", str)):
        parser.add_argument(option, type=kind, required=kind is str)
    args = parser.parse_args(argv)
    Path(args.out).write_text(json.dumps(result_of(args.config, args.runs, args.epochs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
