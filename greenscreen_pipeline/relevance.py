"""Which parameters drive mean power, energy and the objective (accuracy by default).

Three views per target:
- Type-II ANOVA (statsmodels OLS with categorical factors), partial eta^2 and
  Holm-corrected p-values. With fewer runs than the full model needs, each
  factor is tested alone (one-way) and the output says so.
- Kruskal-Wallis per factor: a rank test, robust to outliers and non-normality.
- Random-forest permutation importance per factor, with the forest's
  out-of-bag R^2 beside it (an importance from a forest that cannot
  predict, R^2 <= 0, means little).
Levels with fewer than 5 runs are flagged: their estimates are fragile.

A factor the data cannot test gets no p-value (p, partial eta^2 and p_holm NaN) and says
why in `untested`, never a "matters": an F test measures the differences between levels
against the spread within them, so it needs that spread. "too few runs per level": fewer
than two of its levels have two runs or more, so the spread is seen in one level at most
(3 runs, levels of 2 and 1: one pair). "no residual variation": the model fits every run
(the runs within each level identical, as accuracy on a small test set often is), so F is
a difference divided by zero and p ~ 1e-14 however little the data say.

A range of config.yaml (`continuous`: factor -> on a log scale or not) has a value per
run, not a few levels, so it enters the same three views as a number: a linear term in
the ANOVA (on the log of its value for a log range; one degree of freedom, so its
partial eta^2 and Holm p-value read like a list's), Spearman's rank correlation in
place of Kruskal-Wallis, and one numeric column in the forest.
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import pandas as pd

from .provenance import chosen_kind, kind_rank
from .space import METHOD_DIMENSIONS

MIN_LEVEL_RUNS = 5
Continuous = Mapping[str, bool] | None  # a range factor -> whether on a log scale


def ranges_of(space: dict) -> dict[str, bool]:
    """The range dimensions of a recorded space (sweep.json's), each with its log scale."""
    return {dim: bool(spec.get("log")) for dim, spec in (space or {}).items()
            if isinstance(spec, dict)}


def _encoded(data: pd.DataFrame, factors: list[str], continuous: Continuous) -> pd.DataFrame:
    """The factors as the models read them: a list's values as words, a range's as a
    number (its log on a log scale); "n/a" and unreadable values become NaN."""
    out = {}
    for f in factors:
        if f in (continuous or {}):
            values = pd.to_numeric(data[f], errors="coerce").astype(float)
            out[f] = np.log(values.where(values > 0)) if continuous[f] else values
        else:
            out[f] = data[f].astype(str)
    return pd.DataFrame(out, index=data.index)


def kind(factor: str, continuous: Continuous) -> str:
    """How a factor is read: "values", "range" or "range (log)"."""
    if factor not in (continuous or {}):
        return "values"
    return "range (log)" if continuous[factor] else "range"


def chosen_energy_kind(kinds: pd.Series) -> str:
    """`provenance.chosen_kind` of a Series of runs' kinds, in run order."""
    return chosen_kind(list(kinds))


def one_energy_kind(df: pd.DataFrame) -> tuple[pd.DataFrame, dict | None]:
    """The runs whose energy the energy and power tests read: those of the energy kind
    `chosen_energy_kind` picks (provenance.energy_kind: how it was obtained), so that a
    factor that only parts measured runs from estimated ones is never what "drives
    energy"; and what was left out (`left_out`: runs, kinds, reason), or None."""
    from .provenance import energy_kind

    if "source" not in df or df.empty:
        return df, None
    kinds = df["source"].map(energy_kind)
    if kinds.nunique() < 2:
        return df, None
    chosen = chosen_energy_kind(kinds)
    counts = kinds.value_counts()
    others = counts.drop(chosen)
    listed = ", ".join(f"{n} {k}" for k, n in others.items())
    why = ("measured before estimated, then the kind most runs share" if kind_rank(chosen)
           == 0 else "none of them measured: the kind most runs share, an estimate last")
    return df[kinds == chosen], {
        "energy_kind": chosen, "runs": int(others.sum()),
        "kinds": {k: int(n) for k, n in others.items()},
        "reason": f"on the {counts[chosen]} run(s) whose energy is {chosen} ({why}); left "
                  f"out, their energy obtained otherwise: {listed}; an estimate or another "
                  "meter's figure is never compared with these"}


def varying_factors(df: pd.DataFrame, factors: list[str]) -> list[str]:
    return [f for f in factors if f in df and df[f].astype(str).nunique() > 1]


def anova(df: pd.DataFrame, target: str, factors: list[str],
          continuous: Continuous = None) -> tuple[pd.DataFrame, str]:
    """Partial eta^2 and p per factor, Holm-corrected; a factor the runs cannot test gets
    NaN and its reason in `untested` (the module's docstring)."""
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    data = _encoded(df, factors, continuous).assign(**{target: df[target]}).dropna()
    term = {f: f if f in (continuous or {}) else f"C({f})" for f in factors}
    dof = {f: 1 if f in (continuous or {}) else data[f].nunique() - 1 for f in factors}
    joint = len(data) - 1 - sum(dof.values()) >= 2
    rows = []
    if joint:
        with warnings.catch_warnings():  # a rank-deficient design: `_aliased` says so
            warnings.simplefilter("ignore")
            fit = smf.ols(f"{target} ~ " + " + ".join(term.values()), data).fit()
        aliased = _aliased(fit, term)
        kept = [f for f in factors if f not in aliased]
        if aliased and kept:  # the others tested without them, as if they were not swept
            fit = smf.ols(f"{target} ~ " + " + ".join(term[f] for f in kept), data).fit()
        table, flat = (anova_lm(fit, typ=2), _flat(fit, data[target])) if kept else (None, "")
        rows = [_tested(f, None, term[f], f"confounded with {aliased[f]} in these runs (their "
                        "values change together): the runs cannot tell their effects apart")
                if f in aliased else
                _tested(f, table, term[f], flat or _thin(data, f, continuous))
                for f in factors]
    else:
        for f in factors:
            why = _thin(data, f, continuous) or (
                "no residual degrees of freedom" if len(data) - dof[f] - 1 < 1 else None)
            if why:
                rows.append(_tested(f, None, term[f], why))
                continue
            fit = smf.ols(f"{target} ~ {term[f]}", data).fit()
            rows.append(_tested(f, anova_lm(fit, typ=2), term[f], _flat(fit, data[target])))
    out = _holm(pd.DataFrame(rows))
    method = "type-II ANOVA, all factors jointly" if joint else (
        "one-way ANOVA per factor (too few runs for a joint model)")
    return out, method


def _aliased(fit, term: dict) -> dict[str, str]:
    """Factor -> the factors it is confounded with, where the joint model's design is rank
    deficient: a factor whose columns add less than their number to the design's rank
    (its levels follow the others'). Type-II sums of squares from such a fit are
    meaningless (SS far above the total, "p < 0.001" for both of two aliased factors)."""
    x = fit.model.exog
    rank = np.linalg.matrix_rank(x)
    if rank == x.shape[1]:
        return {}
    names = list(fit.model.exog_names)  # "C(lr)[T.0.01]" of term "C(lr)"; a range's "lr"
    columns = {f: [i for i, n in enumerate(names) if n == t or n.startswith(t + "[")]
               for f, t in term.items()}
    aliased = [f for f, cols in columns.items()
               if rank - np.linalg.matrix_rank(np.delete(x, cols, axis=1)) < len(cols)]
    return {f: ", ".join(g for g in aliased if g != f) or "the others" for f in aliased}


def _tested(factor: str, table: pd.DataFrame | None, term: str, untested: str | None) -> dict:
    """A factor's row: its partial eta^2 and p from the ANOVA table, or NaN and why not."""
    if untested:
        return {"factor": factor, "partial_eta2": float("nan"), "p": float("nan"),
                "untested": untested}
    ss, resid = table.loc[term, "sum_sq"], table.loc["Residual", "sum_sq"]
    return {"factor": factor, "partial_eta2": ss / (ss + resid),
            "p": table.loc[term, "PR(>F)"], "untested": None}


def _thin(data: pd.DataFrame, factor: str, continuous: Continuous) -> str | None:
    """Why a list factor cannot be tested for want of runs: the spread within its levels,
    which its F test needs, seen in fewer than two levels. A range (one slope) has none."""
    if factor in (continuous or {}):
        return None
    replicated = int((data[factor].value_counts() >= 2).sum())
    return "too few runs per level" if replicated < 2 else None


def _flat(fit, y: pd.Series) -> str | None:
    """Why a fitted model leaves nothing to test against: no residual degrees of freedom,
    or a residual spread below float32's resolution of the values (metrics are recorded in
    float32, so identical runs may differ in the last digit), where F is a ratio to zero."""
    if fit.df_resid < 1:
        return "no residual degrees of freedom"
    spread = np.sqrt(max(float(fit.ssr), 0.0) / fit.df_resid)
    if spread <= np.finfo(np.float32).eps * float(np.abs(y).max()):
        return "no residual variation"
    return None


def _holm(table: pd.DataFrame) -> pd.DataFrame:
    """Holm's correction over every row of the table, an untested one counted as p = 1
    (conservative, as the one-run-per-level rows always were); its own p_holm is NaN, so
    that it never reads as tested and found wanting."""
    p = table["p"].fillna(1.0).to_numpy(float) if len(table) else np.array([])
    adjusted = holm(p)
    untested = table["untested"].notna().to_numpy() if "untested" in table else False
    return table.assign(p_holm=np.where(untested, np.nan, adjusted))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values: sorted ascending, the i-th of m multiplied by
    m - i, made non-decreasing, capped at 1, returned in the given order. The same values
    as statsmodels' `multipletests(p, method="holm")[1]` (tests/test_relevance_small_samples
    compares them). Not called there because statsmodels 0.15 runs a full `gc.collect()` on
    every Holm call: in a process that holds Keras (a test's, a notebook's) that was more
    than half of a whole analysis of a small sweep (benchmarks/RESULTS.md)."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    stepped = p[order] * np.arange(len(p), 0, -1)
    adjusted = np.empty(len(p))
    adjusted[order] = np.minimum(np.maximum.accumulate(stepped), 1.0) if len(p) else stepped
    return adjusted


def kruskal(df: pd.DataFrame, target: str, factors: list[str],
            continuous: Continuous = None) -> pd.DataFrame:
    """Kruskal-Wallis per factor; Spearman's rank correlation for a range (its p in kw_p)."""
    from scipy.stats import kruskal as kw
    from scipy.stats import spearmanr

    rows = []
    for f in factors:
        if f in (continuous or {}):
            pair = pd.DataFrame({"x": _encoded(df, [f], continuous)[f], "y": df[target]}).dropna()
            varies = len(pair) >= 3 and pair.nunique().min() > 1
            rho, p = spearmanr(pair["x"], pair["y"]) if varies else (np.nan, 1.0)
            rows.append({"factor": f, "kw_H": float("nan"), "kw_p": float(p),
                         "spearman_rho": float(rho)})
            continue
        groups = [g[target].to_numpy() for _, g in df.groupby(df[f].astype(str))]
        groups = [g for g in groups if len(g)]
        try:
            stat, p = kw(*groups)
        except ValueError:  # all values identical
            stat, p = 0.0, 1.0
        rows.append({"factor": f, "kw_H": float(stat), "kw_p": float(p)})
    return pd.DataFrame(rows)


def forest(df: pd.DataFrame, target: str, factors: list[str], seed: int = 0,
           repeats: int | None = None, continuous: Continuous = None) -> tuple[pd.DataFrame,
                                                                                float]:
    """Permutation importance of each factor in a random forest, and the forest's
    out-of-bag R^2 (each run predicted by the trees that did not see it: a held-out
    score like cross-validation's, from the one forest instead of five more).

    The factors are one-hot encoded once, and each factor's `repeats` shuffles are
    scored in one prediction over the stacked copies: a forest's cost is mostly a Python
    call per tree and prediction, so sklearn's permutation_importance on an encoding
    pipeline, after 5-fold cross-validation, took 15 s per target at 1000 runs. The
    shuffles scored number 3000 rows or more (10 repeats up to 300 runs, 3 from 1000 on:
    a mean over more runs needs fewer repeats), so the cost grows with the runs, linearly.
    """
    from sklearn.ensemble import RandomForestRegressor

    x, blocks = _one_hot(df, factors, continuous)
    y = df[target].to_numpy(float)
    repeats = repeats or min(10, max(3, 3000 // len(df)))
    # 100 trees (sklearn's default): the importances' ranking and R^2 are those of 200 here.
    model = RandomForestRegressor(n_estimators=100, random_state=seed, oob_score=True)
    with warnings.catch_warnings():  # a run no tree left out: sklearn warns, R^2 still holds
        warnings.simplefilter("ignore")
        model.fit(x, y)
    r2 = float(model.oob_score_) if len(df) >= 2 else float("nan")
    base = _r2(y, model.predict(x))
    rng = np.random.default_rng(seed)
    importance = []
    for columns in blocks:
        shuffled = np.tile(x, (repeats, 1))
        for k in range(repeats):  # each copy's rows of this factor in another order
            rows = slice(k * len(x), (k + 1) * len(x))
            shuffled[rows, columns] = x[rng.permutation(len(x))][:, columns]
        scores = [_r2(y, part) for part in np.split(model.predict(shuffled), repeats)]
        importance.append(base - float(np.mean(scores)))
    return pd.DataFrame({"factor": factors, "rf_importance": importance}), r2


def _one_hot(df: pd.DataFrame, factors: list[str],
             continuous: Continuous = None) -> tuple[np.ndarray, list[slice]]:
    """The factors as 0/1 columns (a range: one numeric column, -1 where n/a), and each
    factor's block of columns."""
    encoded = _encoded(df, factors, continuous)
    parts = [encoded[[f]].fillna(-1.0).to_numpy(float) if f in (continuous or {}) else
             pd.get_dummies(encoded[f], dtype=float).to_numpy() for f in factors]
    edges = np.cumsum([0] + [p.shape[1] for p in parts])
    return np.hstack(parts), [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def _r2(y: np.ndarray, predicted: np.ndarray) -> float:
    """R^2 as sklearn scores it (1 when y is constant and predicted exactly)."""
    total = float(np.sum((y - y.mean()) ** 2))
    residual = float(np.sum((y - predicted) ** 2))
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return 1 - residual / total


def sparse_levels(df: pd.DataFrame, factors: list[str], continuous: Continuous = None) -> dict:
    out = {}
    for f in factors:
        if f in (continuous or {}):  # a value per run, by design
            continue
        counts = df[f].astype(str).value_counts()
        thin = sorted(counts[counts < MIN_LEVEL_RUNS].index.tolist())
        if thin:
            out[f] = thin
    return out


def relevance(df: pd.DataFrame, target: str, factors: list[str],
              label: str | None = None, continuous: Continuous = None) -> dict:
    """All three views for one target, merged per factor and sorted by effect size;
    `label` names the target in sentences (default: the column's name).

    A method's own setting (e.g. target_sparsity) is "n/a" for runs of other
    methods: it is kept out of the joint model and tested one-way within the runs
    of its method only (`within`, `n`), never imputed. Holm's correction covers
    every test in the table."""
    data = df.dropna(subset=[target])
    named = {"target": target, "label": label or target}
    general = varying_factors(data, [f for f in factors if f not in METHOD_DIMENSIONS])
    own = [row for f in factors if f in METHOD_DIMENSIONS
           if (row := _within_method(data, target, f, continuous)) is not None]
    if len(data) < 3 or not (general or own):
        return {**named, "runs": len(data), "method": "not enough runs or no "
                "parameter varies", "table": [], "rf_cv_r2": None, "sparse_levels": {}}
    table, method, r2 = pd.DataFrame(), "", None
    if general:
        table, method = anova(data, target, general, continuous)
        table = table.merge(kruskal(data, target, general, continuous), on="factor")
        rf, r2 = forest(data, target, general, continuous=continuous)
        table = table.merge(rf, on="factor")
    if own:
        table = pd.concat([table, pd.DataFrame(own)], ignore_index=True)
        method += ("; " if method else "") + "method settings: one-way within their method's runs"
        table = _holm(table)
    table = table.sort_values("partial_eta2", ascending=False, na_position="last")
    table["kind"] = [kind(f, continuous) for f in table["factor"]]
    table["untested"] = pd.Series(  # object: pandas 3 would store None as a str NaN
        [why if isinstance(why, str) else None for why in table["untested"]],
        index=table.index, dtype=object)
    return {**named, "runs": len(data), "method": method,
            "table": table.to_dict("records"), "rf_cv_r2": r2,
            "sparse_levels": sparse_levels(data, general, continuous)}


def _within_method(data: pd.DataFrame, target: str, factor: str,
                   continuous: Continuous = None) -> dict | None:
    """One-way tests of a method setting over the runs of its method (the others: n/a)."""
    if factor not in data:
        return None
    runs = data[data[factor].astype(str) != "n/a"]
    if len(runs) < 3 or runs[factor].astype(str).nunique() < 2:
        return None
    table, _ = anova(runs, target, [factor], continuous)
    row = {**table.iloc[0].to_dict(),
           **kruskal(runs, target, [factor], continuous).iloc[0].to_dict()}
    return {**row, "rf_importance": float("nan"), "within": f"{METHOD_DIMENSIONS[factor]} runs",
            "n": len(runs)}


def plain_words(result: dict, alpha: float = 0.05) -> str:
    """One sentence a reader can act on; p-values as papers write them (p < 0.001). A factor
    the runs cannot test is named with why, never ranked: its partial eta^2 would be 1.
    Runs the test left out (`left_out`: energy obtained otherwise) are said at its end."""
    words = _plain_words(result, alpha)
    left = result.get("left_out")
    return f"{words[:-1]} ({left['reason']})." if left else words


def _plain_words(result: dict, alpha: float) -> str:
    target, table = result.get("label") or result["target"], result["table"]
    if not table:
        return f"{target}: {result['method']}."
    tested = [r for r in table if not isinstance(r.get("untested"), str)]
    untested = _untested_words(table)
    if not tested:
        return (f"{target}: no parameter can be tested with these {result['runs']} runs "
                f"({untested}).")
    cannot = f"; not tested: {untested}" if untested else ""
    strong = [r for r in tested if r["p_holm"] < alpha]
    if not strong:
        top = tested[0]
        return (f"{target}: no parameter matters significantly after Holm correction "
                f"(largest: {top['factor']}, partial eta^2 {top['partial_eta2']:.2f}, "
                f"{p_words(top['p_holm'])}; {result['runs']} runs){cannot}.")
    parts = [f"{r['factor']} (partial eta^2 {r['partial_eta2']:.2f}, {p_words(r['p_holm'])})"
             for r in strong]
    r2 = result.get("rf_cv_r2")
    fit = f"; forest out-of-bag R^2 {r2:.2f}" if r2 is not None and np.isfinite(r2) else ""
    return f"{target}: " + ", ".join(parts) + f" matter{fit}{cannot}."


def _untested_words(table: list[dict]) -> str:
    """"batch_size, hidden_layers: too few runs per level": the untested factors by reason."""
    reasons: dict[str, list[str]] = {}
    for r in table:
        if isinstance(r.get("untested"), str):  # NaN or None where tested
            reasons.setdefault(r["untested"], []).append(r["factor"])
    return "; ".join(f"{', '.join(names)}: {why}" for why, names in reasons.items())


def p_words(p: float) -> str:
    """A Holm p-value in a sentence: "p_holm < 0.001", else two significant digits."""
    if p is None or not np.isfinite(p):
        return "p_holm n/a"
    return "p_holm < 0.001" if p < 0.001 else f"p_holm {p:.2g}"
