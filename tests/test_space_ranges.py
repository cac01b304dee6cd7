"""Ranges in the search space (issue 36): parsing and one clear error per bad range,
sampling (bounds, log scale, integers, steps, reproducible across a resume), a list space
visited without repeats, Optuna's distributions, and the analysis and report of a range."""

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import yaml

from greenscreen_pipeline import analysis, ranges, relevance, space
from greenscreen_pipeline.search import encoding, propose
from greenscreen_pipeline.space import SweepConfig

RANGES = """
configuration:
  lr: {min: 0.0001, max: 0.1, log: true}
  optimizer_momentum: {min: 0.0, max: 0.5}
  batch_size: {min: 16, max: 1024, log: true}
  resnet_depth: {min: 1, max: 5, step: 1}
  dropout: {min: 0.0, max: 0.5, step: 0.1}
  units: {min: 64, max: 1024, log: true}
  optimizer: {values: [Adam, SGD]}
"""


def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_ranges_parse_beside_lists_with_their_kind(tmp_path):
    config = space.load(write(tmp_path, RANGES))
    assert config.space["lr"] == {"min": 0.0001, "max": 0.1, "log": True, "step": None}
    assert config.space["optimizer_momentum"] == {"min": 0.0, "max": 0.5, "log": False,
                                                  "step": None}
    assert config.space["batch_size"].integer and config.space["units"].integer
    assert config.space["resnet_depth"].grid and config.space["resnet_depth"].count == 5
    assert config.space["dropout"].count == 6 and not config.space["dropout"].integer
    assert config.space["optimizer"] == ["Adam", "SGD"]
    assert config.size is None  # a float range: endless
    # lr and momentum are float dimensions: integer ends are read as floats
    floats = space.load(write(tmp_path, "configuration: {optimizer_momentum: {min: 0, max: 0}}"))
    assert floats.space["optimizer_momentum"]["min"] == 0.0
    assert isinstance(floats.space["optimizer_momentum"]["min"], float)


def test_the_shipped_config_keeps_its_lists():
    config = space.load("config.yaml")
    assert all(isinstance(values, list) for values in config.space.values())


@pytest.mark.parametrize("text, where, allowed", [
    ("lr: {min: 0.1, max: 0.01}", "configuration.lr.min", "a number <= max (0.01)"),
    ("lr: {min: 0.001, max: 0.1, lgo: true}", "configuration.lr.lgo", "did you mean 'log'?"),
    ("dropout: {min: -1, max: 1, log: true}", "configuration.dropout.min",
     "an integer > 0 with log: true"),
    ("dropout: {min: 0.0, max: 1.0, log: true}", "configuration.dropout.min",
     "a number > 0 with log: true"),
    ("optimizer: {min: 1, max: 2}", "configuration.optimizer", "optimizer takes names"),
    ("partitioning: {min: 1, max: 2}", "configuration.partitioning", "takes names"),
    ("resnet_shortcuts: {min: 0, max: 1}", "configuration.resnet_shortcuts",
     "resnet_shortcuts takes true or false, not a range"),
    ("lr: {min: 0.001, max: 0.1, log: 'true'}", "configuration.lr.log",
     "true or false (unquoted)"),
    ("lr: {min: 0, max: 0.1}", "configuration.lr.min", "a number in (0.0, inf)"),
    ("optimizer_momentum: {min: 0.5, max: 1.0}", "configuration.optimizer_momentum.max",
     "a number in [0.0, 1.0)"),
    ("batch_size: {min: 16.5, max: 64}", "configuration.batch_size.min", "an integer"),
    ("lr: {min: 0.001, max: 0.1, log: yes please}", "configuration.lr.log", "true or false"),
    ("lr: {min: 0.001, max: 0.1, log: true, step: 0.01}", "configuration.lr.step",
     "no step with log: true"),
    ("units: {min: 8, max: 64, step: 0}", "configuration.units.step", "a positive integer"),
    ("lr: {min: 0.001}", "configuration.lr", "a range with both min and max"),
    ("lr: {min: fast, max: 0.1}", "configuration.lr.min", "a number"),
    # An OverflowError's traceback, and draws all clamped to max, before:
    ("x: {min: 0.0, max: 1.0e+308, step: 1.0e-308}", "configuration.x.step",
     "a step leaving at most 1e+09 values"),
    ("x: {min: -1.0e+308, max: 1.0e+308}", "configuration.x.max",
     "a number whose distance from min (-1e+308) is finite"),
    # Other tools' names (a review: Optuna's low/high were told "did you mean 'log'?", on
    # the whole mapping; W&B's q and KerasTuner's sampling had no hint):
    ("lr: {low: 0.001, high: 0.1, log: true}", "configuration.lr.low", "did you mean 'min'?"),
    ("lr: {min: 0.001, max: 0.1, q: 0.01}", "configuration.lr.q", "did you mean 'step'?"),
    ("lr: {min: 0.001, max: 0.1, sampling: log}", "configuration.lr.sampling",
     "did you mean 'log'?"),
    # An own dimension of integers said only "a positive integer" to a float step:
    ("x: {min: 0, max: 1, step: 0.25}", "configuration.x.step",
     "min and max are both integers, so the range holds integers (write min: 0.0"),
])
def test_a_bad_range_gives_one_clear_error_naming_its_key(tmp_path, text, where, allowed):
    path = write(tmp_path, "configuration:\n  " + text)
    with pytest.raises(space.ConfigError) as err:
        space.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {where}: got ")
    assert allowed in message and "allowed:" in message


def test_every_draw_is_inside_its_range_with_its_type(tmp_path):
    config = space.load(write(tmp_path, RANGES))
    runs = [config.run(i) for i in range(400)]
    for dim in ("lr", "optimizer_momentum", "batch_size", "resnet_depth", "dropout", "units"):
        spec = config.space[dim]
        values = [r[dim] for r in runs]
        assert all(spec.low <= v <= spec.high for v in values), dim
        assert all(type(v) is (int if spec.integer else float) for v in values), dim
    assert {r["resnet_depth"] for r in runs} == {1, 2, 3, 4, 5}
    assert {r["dropout"] for r in runs} == {0.0, 0.1, 0.2, 0.3, 0.4, 0.5}  # no float noise
    assert len({r["lr"] for r in runs}) == 400  # a float range: every run its own value


def test_a_log_range_is_log_uniform_and_a_plain_one_uniform(tmp_path):
    config = space.load(write(tmp_path, RANGES))
    runs = [config.run(i) for i in range(1, 2001)]
    decades = np.histogram(np.log10([r["lr"] for r in runs]), bins=[-4, -3, -2, -1])[0]
    assert all(abs(share - 1 / 3) < 0.04 for share in decades / len(runs))  # a third each
    momentum = np.array([r["optimizer_momentum"] for r in runs])
    assert abs(np.mean(momentum < 0.25) - 0.5) < 0.04  # uniform: half below the middle
    units = np.array([r["units"] for r in runs])  # integers on a log scale: half below 256
    assert abs(np.mean(units < 256) - 0.5) < 0.04 and units.min() < 80


def test_run_zero_is_the_baseline_of_lists_and_ranges(tmp_path):
    base = space.load(write(tmp_path, RANGES)).run(0)
    assert base["optimizer"] == "Adam"  # a list's first value
    assert math.isclose(base["lr"], math.sqrt(0.0001 * 0.1))  # a log range's middle
    assert base["optimizer_momentum"] == 0.25 and base["resnet_depth"] == 3
    assert base["dropout"] == 0.3 and base["units"] == 256


def test_runs_are_reproducible_across_a_resume_and_their_records(tmp_path):
    path = write(tmp_path, RANGES)
    first = [space.load(path).run(i) for i in range(30)]
    resumed = space.load(path)  # another process, another load: the same runs
    assert [resumed.run(i) for i in reversed(range(30))] == first[::-1]
    assert [space.load(path, {"seed": 23}).run(i) for i in range(1, 30)] != first[1:]
    # the exact values survive parameters.yaml, configuration.json and runs.csv
    assert yaml.safe_load(yaml.safe_dump(first)) == first
    assert json.loads(json.dumps(first)) == first
    csv = tmp_path / "runs.csv"
    pd.DataFrame(first).to_csv(csv, index=False)
    assert pd.read_csv(csv)["lr"].tolist() == [r["lr"] for r in first]


def test_a_list_space_runs_every_configuration_once_before_any_twice(tmp_path):
    lists = {"a": [1, 2, 3], "b": ["x", "y"], "c": [0.1, 0.2, 0.3, 0.4]}
    config = SweepConfig("x", {"seed": 7}, lists)
    first = [tuple(config.run(i).values()) for i in range(24)]
    assert len(set(first)) == 24 and first[0] == (1, "x", 0.1)
    second = [tuple(config.run(i).values()) for i in range(24, 48)]
    assert set(second) == set(first)  # runs past the space: every one again
    assert second != first
    # a grid range counts like a list
    mixed = SweepConfig("x", {"seed": 1}, {"a": [1, 2], "d": ranges.Range(
        {"min": 1, "max": 3, "log": False, "step": 1})})
    assert len({tuple(mixed.run(i).values()) for i in range(6)}) == 6


def test_a_huge_space_is_visited_without_listing_it():
    huge = {f"d{k}": list(range(10)) for k in range(12)}  # 10**12 configurations
    config = SweepConfig("x", {"seed": 3}, huge)
    assert config.size == 10 ** 12
    runs = {tuple(config.run(i).values()) for i in range(500)}
    assert len(runs) == 500
    for n in (1, 2, 3, 7, 64, 1000):  # the permutation is a bijection of range(n)
        assert sorted(ranges.permute(k, n, "key") for k in range(n)) == list(range(n))


def test_check_says_when_runs_exceed_the_configurations(tmp_path):
    def check(path):
        return subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "check",
                               "--config", str(path)], capture_output=True, text=True,
                              timeout=120)

    small = check(write(tmp_path, """
        configuration: {optimizer: {values: [Adam, SGD]}, units: {min: 1, max: 2}}
        settings: {runs: 9}
    """))
    assert small.returncode == 0, small.stderr
    assert "settings.runs is 9 but the space holds 4 configuration(s)" in small.stderr
    assert "another training seed" in small.stderr
    endless = check(write(tmp_path, RANGES, "endless.yaml"))
    assert endless.returncode == 0 and "configuration(s)" not in endless.stderr

def test_an_integer_log_range_is_drawn_not_visited_so_no_count_is_claimed():
    """units {min: 1, max: 4, log: true} with 8 runs: the warning said runs 000-003 train
    each value once, but its values are drawn at random (2, 4, 2, 1: 3 never came)."""
    assert ranges.size({"units": {"min": 1, "max": 4, "log": True}}) is None
    assert ranges.size({"units": {"min": 1, "max": 4}, "optimizer": ["Adam", "SGD"]}) == 8


def test_optuna_gets_the_matching_distributions(tmp_path):
    from optuna.distributions import FloatDistribution, IntDistribution

    config = space.load(write(tmp_path, RANGES))
    dists = encoding.distributions(encoding.dimensions(config.space))
    assert dists["lr"] == FloatDistribution(0.0001, 0.1, log=True)
    assert dists["optimizer_momentum"] == FloatDistribution(0.0, 0.5)
    assert dists["units"] == IntDistribution(64, 1024, log=True)
    assert dists["resnet_depth"] == IntDistribution(1, 5, step=1)
    assert dists["dropout"] == FloatDistribution(0.0, 0.5, step=0.1)
    # sweep.json's record of the space (plain dicts) reads the same
    recorded = json.loads(json.dumps(config.space))
    assert encoding.distributions(encoding.dimensions(recorded)) == dists


SPACE = {"lr": ranges.Range({"min": 1e-4, "max": 0.1, "log": True, "step": None}),
         "units": ranges.Range({"min": 8, "max": 512, "log": True, "step": 1}),
         "layers": ranges.Range({"min": 1, "max": 4, "log": False, "step": 1}),
         "net": ["mlp", "cnn"]}


def score(c):
    return 0.9 - abs(math.log10(c["lr"]) + 2.5) / 5, c["units"] * c["layers"] / 100


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_pareto_proposes_inside_the_ranges_and_repeats_nothing(sampler):
    config = SweepConfig("x", {"seed": 4}, SPACE)
    results = []
    for b in range(4):
        batch = propose.propose(SPACE, results, range(b * 4, b * 4 + 4), seed=4, batch=b,
                                random_run=config.run, n_startup=4, sampler=sampler)
        for i, c in batch.items():
            assert list(c) == list(SPACE) and c["net"] in SPACE["net"]
            assert all(SPACE[d].contains(c[d]) for d in ("lr", "units", "layers"))
            assert type(c["units"]) is int and type(c["lr"]) is float
            results.append(propose.Result(i, c, "done", *score(c)))
    dims = encoding.dimensions(SPACE)
    keys = [encoding.key(r.config, dims) for r in results]
    assert len(set(keys)) == len(keys)


def test_pareto_on_a_list_space_tries_every_configuration_once():
    lists = {"a": [1, 2, 3], "b": ["x", "y"]}
    config = SweepConfig("x", {"seed": 2}, lists)
    results = []
    for b in range(3):
        batch = propose.propose(lists, results, range(b * 2, b * 2 + 2), seed=2, batch=b,
                                random_run=config.run, n_startup=2, sampler="tpe")
        results += [propose.Result(i, c, "done", 0.5 + 0.1 * c["a"], 1.0)
                    for i, c in batch.items()]
    assert len({(r.config["a"], r.config["b"]) for r in results}) == 6


# -- the analysis and the report ----------------------------------------------------------------
def range_runs(n=40, seed=0):
    """Energy grows with log(lr) and with the optimizer; the objective with neither."""
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-4, -1, n)
    optimizer = np.array(["Adam", "SGD"])[np.arange(n) % 2]
    energy = 100 + 30 * (np.log10(lr) + 4) + 10 * (optimizer == "SGD") + rng.normal(0, 2, n)
    return pd.DataFrame({"run": [f"{i:03d}" for i in range(n)], "lr": lr,
                         "optimizer": optimizer, "energy_j": energy,
                         "objective": 0.9 + rng.normal(0, 0.01, n)})


def test_the_relevance_of_a_range_is_a_regression_on_its_log():
    runs = range_runs()
    result = relevance.relevance(runs, "energy_j", ["lr", "optimizer"],
                                 continuous={"lr": True})
    rows = {r["factor"]: r for r in result["table"]}
    assert result["method"] == "type-II ANOVA, all factors jointly"
    assert rows["lr"]["kind"] == "range (log)" and rows["optimizer"]["kind"] == "values"
    assert rows["lr"]["partial_eta2"] > 0.9 and rows["lr"]["p_holm"] < 0.001
    assert rows["lr"]["spearman_rho"] > 0.9 and rows["lr"]["kw_p"] < 0.001  # Spearman's p
    assert rows["optimizer"]["p_holm"] < 0.05 and rows["lr"]["rf_importance"] > 0.5
    assert "lr" not in result["sparse_levels"]  # a value per run is no sparse level
    flat = relevance.relevance(runs, "objective", ["lr", "optimizer"], continuous={"lr": True})
    assert all(r["p_holm"] > 0.05 for r in flat["table"])


def write_run(folder, params, energy, objective):
    folder.mkdir(parents=True)
    (folder / "parameters.yaml").write_text(yaml.safe_dump({**params, "test_accuracy":
                                                            objective}))
    (folder / "status.json").write_text(json.dumps({"status": "done", "reason": None}))
    (folder / "summary.json").write_text(json.dumps({
        "energy_j": energy, "power_avg_w": 50.0, "duration_s": energy / 50, "source":
        "measured:nvidia-smi", "t_start": 1.7e9, "t_end": 1.7e9 + 60,
        "devices": [{"name": "NVIDIA H200"}], "test_accuracy": objective}))
    (folder / "logs.csv").write_text("epoch,loss,val_accuracy,power_w,energy_j\n"
                                     f"0,0.5,{objective},50.0,{energy}\n")


@pytest.mark.parametrize("rule", ["run", "values"])
def test_a_sweep_on_a_range_analyses_recommends_and_reports(tmp_path, rule):
    from greenscreen_pipeline import report

    spans = {"lr": {"min": 0.0001, "max": 0.1, "log": True, "step": None}}
    (tmp_path / "sweep.json").write_text(json.dumps({
        "seed": 1, "space": {**spans, "optimizer": ["Adam", "SGD"]}, "settings": {},
        "search": {"search": "random", "early_stop": "off"}}))
    runs = range_runs(24)
    for _, r in runs.iterrows():
        write_run(tmp_path / r["run"], {"lr": float(r["lr"]), "optimizer": r["optimizer"]},
                  float(r["energy_j"]), float(r["objective"]))
    result = analysis.analyze(tmp_path, floor=0.05, rule=rule)
    assert result["ranges"] == spans
    rows = {r["factor"]: r for r in result["relevance"]["energy_j"]["table"]}
    assert rows["lr"]["kind"] == "range (log)" and rows["lr"]["p_holm"] < 0.001
    rec = result["recommendation"]
    assert rec["parameters"]["lr"] in runs["lr"].tolist()  # a value a run trained, exactly
    if rule == "values":  # judged in bins, the cheap end chosen
        chosen = next(b for b in rec["evidence"]["lr"] if b["chosen"])
        assert chosen["span"][0] == runs["lr"].min() and len(rec["evidence"]["lr"]) == 4
    written = report.build(tmp_path, tmp_path / "report.pdf")
    from pypdf import PdfReader

    text = "\n".join(p.extract_text() for p in PdfReader(str(written)).pages)
    assert "energy against lr (range" in text and "lr (range (log))" in text


@pytest.mark.parametrize("values", [[1, 2, 3, 2, 3, 1], [2, 1, 2, 3, 2, 1, 3, 2, 1, 3, 4, 5]])
def test_recommend_values_never_splits_one_value_of_a_range_between_levels(values):
    """A grid range (`hidden_layers: {min: 1, max: 3}`) holds a few values: judged per
    value, as a list is; with more values, bins are cut between values. Before, bins of
    equal run counts split the runs of one value by their order (a review: run 000 at 2
    in the bin named 1, run 003 at 2 in the bin named 3)."""
    from greenscreen_pipeline.recommend import recommend_values

    n = len(values)
    runs = pd.DataFrame({"run": [f"{i:03d}" for i in range(n)], "layers": values,
                         "energy_j": [10.0 * v for v in values],
                         "objective": [0.9 - 0.01 * i for i in range(n)],
                         "source": ["measured:nvidia-smi"] * n})
    levels = recommend_values(runs, 0.5, ["layers"], continuous={"layers": False})[
        "evidence"]["layers"]
    owners = {}
    for level in levels:
        span = level.get("span", [level["value"]] * 2)
        for v in {v for v in values if span[0] <= v <= span[1]}:
            owners.setdefault(v, []).append(level["value"])
    assert all(len(held) == 1 for held in owners.values()), levels
    assert sum(level["runs"] for level in levels) == n
    if len(set(values)) <= 4:
        assert sorted(level["value"] for level in levels) == sorted(set(values))


def test_an_integer_step_range_that_does_not_reach_max_ends_on_its_grid_for_optuna():
    """`{min: 1, max: 6, step: 2}` holds 1, 3, 5: Optuna's distribution ends at 5 (given 6,
    Optuna warned of a range not divisible by step in the middle of the sweep's lines)."""
    import warnings

    made = ranges.parse({"min": 1, "max": 6, "step": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        distribution = made.distribution()
    assert (distribution.low, distribution.high, distribution.step) == (1, 5, 2)
