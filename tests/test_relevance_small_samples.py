"""Relevance on too few runs: a factor the data cannot test is said to be untestable, and
why, never reported as mattering (a tester's 3-run sweep read "batch_size (partial eta^2
1.00, p_holm < 0.001) matter" from a level of one run and a pair of identical accuracies);
a sweep the tests suit still names its driver."""

import math
import re

import numpy as np
import pandas as pd
import pytest

from greenscreen_pipeline import relevance

FACTORS = ["batch_size", "hidden_layers"]


def three_runs() -> pd.DataFrame:
    """The tester's sweep: both factors differ in run 002 only; runs 000 and 001 agree."""
    return pd.DataFrame({"run": ["000", "001", "002"], "batch_size": [32, 32, 64],
                         "hidden_layers": [2, 2, 3], "objective": [0.9, 0.9, 0.8889],
                         "energy_j": [410.0, 432.0, 655.0], "power_w": [61.0, 63.0, 88.0]})


def untested(result: dict) -> dict:
    return {r["factor"]: r.get("untested") for r in result["table"]}


def says_matter(words: str) -> bool:
    """Whether a sentence names drivers ("x (...) matter"), not "no parameter matters"."""
    return re.search(r"\bmatter\b", words) is not None


def drivers(result: dict) -> list[str]:
    """The factors reported as mattering (p_holm < 0.05): what the fault got wrong."""
    return [r["factor"] for r in result["table"] if r["p_holm"] < 0.05]


@pytest.mark.parametrize("target", ["objective", "energy_j", "power_w"])
def test_three_runs_with_one_run_at_a_level_name_no_driver_and_say_why(target):
    result = relevance.relevance(three_runs(), target, FACTORS, label="accuracy")
    assert drivers(result) == [] and not says_matter(relevance.plain_words(result))
    assert untested(result) == {f: "too few runs per level" for f in FACTORS}
    assert all(math.isnan(r["p_holm"]) and math.isnan(r["partial_eta2"])
               for r in result["table"])
    words = relevance.plain_words(result)
    assert words == ("accuracy: no parameter can be tested with these 3 runs (batch_size, "
                     "hidden_layers: too few runs per level).")
    assert not says_matter(words)


@pytest.mark.parametrize("repeat", [0.9, float(np.float32(0.9))],
                         ids=["identical", "float32-rounded"])
def test_levels_whose_runs_agree_leave_no_residual_variation(repeat):
    """4 runs, too few for a joint model: batch_size's two runs per level agree (to
    float32's last digit), so its one-way F divides by a zero spread; hidden_layers,
    whose levels each hold both accuracies, is tested and does not matter."""
    runs = pd.DataFrame({"batch_size": [32, 32, 64, 64], "hidden_layers": [2, 3, 2, 3],
                         "objective": [0.9, repeat, 0.8889, 0.8889]})
    result = relevance.relevance(runs, "objective", FACTORS, label="accuracy")
    assert result["method"].startswith("one-way ANOVA per factor")
    assert drivers(result) == []
    assert untested(result) == {"batch_size": "no residual variation", "hidden_layers": None}
    rows = {r["factor"]: r for r in result["table"]}
    assert math.isnan(rows["batch_size"]["p_holm"]) and rows["hidden_layers"]["p_holm"] > 0.5
    words = relevance.plain_words(result)
    assert words.startswith("accuracy: no parameter matters significantly")
    assert words.endswith("; not tested: batch_size: no residual variation.")


def test_a_joint_model_that_fits_every_run_leaves_no_residual_variation():
    """Two crossed factors, two runs per cell, each cell's runs alike and the effects
    additive: the joint model's residual is zero, so neither factor can be tested."""
    grid = [(b, h) for b in (32, 64) for h in (2, 3)] * 2
    runs = pd.DataFrame({"batch_size": [b for b, _ in grid], "hidden_layers": [h for _, h in grid]})
    runs["objective"] = (0.9 - 0.01 * (runs["batch_size"] == 64)
                         - 0.02 * (runs["hidden_layers"] == 3))
    result = relevance.relevance(runs, "objective", FACTORS)
    assert result["method"] == "type-II ANOVA, all factors jointly"
    assert drivers(result) == []
    assert untested(result) == {f: "no residual variation" for f in FACTORS}
    assert not says_matter(relevance.plain_words(result))


def test_a_method_setting_with_one_run_at_a_level_is_not_tested_beside_a_real_driver():
    """A well-posed factor still matters; the method setting, with its level of one run
    and a pair of equal energies, is named as not tested instead of mattering."""
    rng = np.random.default_rng(3)
    runs = pd.DataFrame({"batch_size": [32, 64, 128] * 4,
                         "method": ["standard"] * 9 + ["pruned"] * 3,
                         "target_sparsity": ["n/a"] * 9 + [0.5, 0.5, 0.9]})
    runs["energy_j"] = 300 + 2.0 * runs["batch_size"] + rng.normal(0, 5, len(runs))
    runs.loc[[9, 10], "energy_j"] = 420.0
    result = relevance.relevance(runs, "energy_j", ["batch_size", "method", "target_sparsity"])
    assert drivers(result) == ["batch_size"]
    assert untested(result)["target_sparsity"] == "too few runs per level"
    words = relevance.plain_words(result)
    assert words.startswith("energy_j: batch_size (partial eta^2")
    assert words.endswith("; not tested: target_sparsity: too few runs per level.")


def test_a_well_posed_sweep_still_names_its_driver():
    """12 runs, a factor of 3 levels x 4 runs with a real effect and noise, and a null
    factor: unchanged by the small-sample rules."""
    rng = np.random.default_rng(0)
    runs = pd.DataFrame({"batch_size": [32, 64, 128] * 4, "optimizer": ["Adam"] * 6 + ["SGD"] * 6})
    runs["energy_j"] = 100 + 0.5 * runs["batch_size"] + rng.normal(0, 3, 12)
    result = relevance.relevance(runs, "energy_j", ["batch_size", "optimizer"])
    rows = {r["factor"]: r for r in result["table"]}
    assert result["method"] == "type-II ANOVA, all factors jointly"
    assert all(r.get("untested") is None for r in rows.values())
    assert rows["batch_size"]["p_holm"] < 0.001 and rows["batch_size"]["partial_eta2"] > 0.9
    assert rows["optimizer"]["p_holm"] > 0.05
    words = relevance.plain_words(result)
    assert words.startswith("energy_j: batch_size (partial eta^2") and "matter" in words
    assert "not tested" not in words


def test_holm_gives_statsmodels_values_without_its_garbage_collection():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    cases = [rng.uniform(size=n) for n in (1, 2, 7, 40)] + [
        np.array([0.01, 0.01, 0.04, 1.0, 0.0]), np.array([0.3, 0.2, 0.2, 0.9]),
        rng.uniform(size=12) ** 6]
    for p in cases:
        assert np.allclose(relevance.holm(p), multipletests(p, method="holm")[1], rtol=0,
                           atol=1e-15), p
    assert relevance.holm(np.array([])).shape == (0,)
    assert relevance.holm([0.04, 0.01]).tolist() == [0.04, 0.02]  # a list, in its order


def test_factors_whose_values_change_together_are_confounded_not_significant():
    """3 configurations x 2 repeats with lr set by batch_size: "lr (partial eta^2 1.00,
    p_holm < 0.001), batch_size (... < 0.001) matter" from a rank-deficient design whose
    sums of squares were 300 times the total; a one-way test of batch_size gives p 0.32."""
    df = pd.DataFrame({"batch_size": [32, 32, 64, 64, 128, 128],
                       "lr": [0.001, 0.001, 0.01, 0.01, 0.01, 0.01],
                       "units": [8, 16, 8, 16, 8, 16],
                       "objective": [0.894, 0.906, 0.928, 0.900, 0.922, 0.922]})
    out, method = relevance.anova(df, "objective", ["batch_size", "lr"])
    assert method == "type-II ANOVA, all factors jointly"
    rows = out.set_index("factor")
    assert rows["p"].isna().all() and rows["partial_eta2"].isna().all()
    assert rows.loc["lr", "untested"] == ("confounded with batch_size in these runs (their "
                                          "values change together): the runs cannot tell "
                                          "their effects apart")
    more = pd.DataFrame({"batch_size": [32, 32, 64, 64, 128, 128, 32, 64],
                         "lr": [0.001, 0.001, 0.01, 0.01, 0.01, 0.01, 0.001, 0.01],
                         "units": [8, 16, 8, 16, 8, 16, 16, 8],
                         "objective": [0.80, 0.86, 0.90, 0.95, 0.905, 0.96, 0.87, 0.91]})
    out, method = relevance.anova(more, "objective", ["batch_size", "lr", "units"])
    assert method == "type-II ANOVA, all factors jointly"
    rows = out.set_index("factor")  # units is free of the others: tested beside them
    assert pd.isna(rows.loc["units", "untested"]) and not math.isnan(rows.loc["units", "p"])
    assert rows.loc["batch_size", "untested"].startswith("confounded with lr")
