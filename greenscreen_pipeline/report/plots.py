"""The report's figures (matplotlib + seaborn). Each function returns a Figure.

Nothing here draws random numbers (no bootstrap bands, no jitter), so a report is
a function of its inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..objective import Objective
from .errorbars import draw_energy_errors, energy_errors
from .layout import EnergyUnit, number
from .ticks import cut, plain_ticks

GREEN, GREY, RED, ORANGE = "#2e7d32", "#9e9e9e", "#c62828", "#ef6c00"
TARGETS = {"energy_j": "energy", "power_w": "mean power", "objective": "the objective"}


def _plt():
    import matplotlib.pyplot as plt

    # The figures draw your configuration's values and names as text: a "$" in one
    # ("$5^$") must stay a character, not start mathtext that fails to parse.
    plt.rcParams["text.parse_math"] = False
    return plt


def significant(p) -> bool:
    """Whether a Holm-corrected p-value is below 0.05; None or NaN: not significant. A
    p-value that underflowed to 0.0 is the most significant of all, not "no value"."""
    return p is not None and bool(np.isfinite(p)) and p < 0.05


def order(values: pd.Series) -> list:
    """A parameter's values in reading order: n/a first, numbers ascending, then words."""
    def key(v):
        if v == "n/a":
            return (0, 0.0, "")
        return (1, float(v), "") if _numeric(v) else (2, 0.0, str(v))
    return sorted(values.unique(), key=key)


def stars(p) -> str:
    if p is None or not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def importance_bars(relevance: dict, targets=("energy_j", "power_w"), top: int = 6):
    """Partial eta^2 per parameter, one panel per target; significant bars in green."""
    shown = [t for t in targets if t in relevance and relevance[t]["table"]]
    fig, axes = _plt().subplots(1, max(1, len(shown)), figsize=(10, 2.6), squeeze=False)
    for ax, target in zip(axes.flat, shown):
        rows = sorted(relevance[target]["table"], key=lambda r: -(r["partial_eta2"] or 0))[:top]
        rows = rows[::-1]  # largest on top
        eta = [r["partial_eta2"] or 0 for r in rows]
        colours = [GREEN if significant(r["p_holm"]) else GREY for r in rows]
        ax.barh([cut(r["factor"]) for r in rows], eta, color=colours)
        for y, r in enumerate(rows):
            ax.text((r["partial_eta2"] or 0) + 0.01, y, stars(r["p_holm"]), va="center")
        ax.set_xlim(0, 1.08)
        ax.set_xlabel("partial η² (share of variance explained)")
        ax.set_title(f"what drives {TARGETS[target]}", fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
    fig.text(0.01, -0.04, "green: significant after Holm correction (* p<0.05, ** p<0.01, "
             "*** p<0.001); grey: not significant", fontsize=7)
    fig.tight_layout()
    return fig


def pareto_plot(ok: pd.DataFrame, front: list[dict], recommended, unit: EnergyUnit,
                objective: Objective | None = None, stopped: pd.DataFrame | None = None,
                ranked: pd.DataFrame | None = None):
    """Energy (log axis) against the objective (accuracy by default; its label says which
    way is better); the front labelled where labels do not collide, the recommendation
    circled; a run's 95 % energy interval as a horizontal bar where it has one. Many
    runs: smaller, translucent dots (dot_alpha). `stopped`: runs halving
    stopped, at their last epoch's objective and their energy so far, drawn as crosses
    apart from the finished runs (the front is of finished runs only). `ranked`: the
    table the front and the recommendation were chosen from (with settings.repeats, the
    repeats' means per configuration, whose `run` names the first repeat): the circle is
    drawn at the recommendation's row there, so at its mean; `ok` where not given."""
    objective = objective or Objective()
    fig, ax = _plt().subplots(figsize=(8, 4.2))
    energy = ok["energy_j"].map(unit)
    many = len(ok) > DOTS_OPAQUE
    ax.scatter(energy, ok["objective"], color=GREY, s=8 if many else 14,
               alpha=dot_alpha(len(ok)), lw=0, label=f"runs ({len(ok)})")
    draw_energy_errors(ax, energy, ok["objective"], energy_errors(ok, unit), True, GREY)
    stopped = stopped if stopped is not None else ok.iloc[:0]
    if not stopped.empty:
        ax.scatter(stopped["energy_j"].map(unit), stopped["objective"], color=ORANGE,
                   marker="x", s=14, lw=1, alpha=dot_alpha(len(ok) + len(stopped)),
                   label=f"stopped (halving) ({len(stopped)})")
    fr = pd.DataFrame(front)
    everything = pd.concat([energy, stopped["energy_j"].map(unit)]) if not stopped.empty \
        else energy
    log = everything.max() > 0 and everything.min() > 0
    if not fr.empty:
        ax.plot(fr["energy_j"].map(unit), fr["objective"], color=GREEN, marker="o", ms=4,
                label="Pareto front")
    ranked = ok if ranked is None else ranked
    rec = ranked[ranked["run"] == recommended]
    if not rec.empty:
        n = int(rec["repeats"].iloc[0]) if "repeats" in rec else 1
        ax.scatter(rec["energy_j"].map(unit), rec["objective"], s=120, facecolors="none",
                   edgecolors=RED, linewidths=1.5,
                   label=f"recommended ({recommended}" + (f", mean of {n})" if n > 1 else ")"))
    if log:
        ax.set_xscale("log")
        plain_ticks(ax.xaxis)
    if not fr.empty:
        _label_front(ax, fr, unit)
    ax.set_xlabel(f"energy per run ({unit.name}" + (", log scale)" if log else ")"))
    ax.set_ylabel(objective.label)
    # The front runs from the cheap, worse runs to the costly, better ones: the legend
    # goes in the corner it leaves empty.
    ax.legend(fontsize=7, loc="lower right" if objective.maximise else "upper right")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


DOTS_OPAQUE = 300  # runs: above, the Pareto plot's dots shrink and fade


def search_progress(progress: list[dict], unit: EnergyUnit, label: str):
    """The hypervolume of the done runs' front (objective `label` against energy) after
    each run, against the sweep's cumulative energy: a step per run, in run order."""
    fig, ax = _plt().subplots(figsize=(8, 2.8))
    spent = [unit(p["cumulative_energy_j"]) for p in progress]
    volume = [p["hypervolume"] for p in progress]
    ax.step(spent, volume, where="post", color=GREEN, lw=1.2)
    ax.plot(spent, volume, ls="none", marker="o", ms=2.5, color=GREEN)
    ax.set_xlabel(f"cumulative energy of the sweep ({unit.name}), runs in run order")
    ax.set_ylabel(f"hypervolume\n({label} × J)", fontsize=8)
    ax.set_ylim(bottom=0)
    plain_ticks(ax.xaxis)
    plain_ticks(ax.yaxis)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def dot_alpha(runs: int) -> float:
    return 0.8 if runs <= DOTS_OPAQUE else max(0.2, 0.8 * (DOTS_OPAQUE / runs) ** 0.5)


def _label_front(ax, fr: pd.DataFrame, unit: EnergyUnit, room: float = 0.05) -> None:
    """The front's run names, skipping any that would sit within `room` (a share of the
    axes) of one already written: the cheapest and the best run first."""
    ax.get_xlim(), ax.get_ylim()  # autoscale now: the positions below use the final limits
    where = ax.transAxes.inverted()
    points = [where.transform(ax.transData.transform((unit(r["energy_j"]), r["objective"])))
              for _, r in fr.iterrows()]
    order = [0, len(fr) - 1] + list(range(1, len(fr) - 1)) if len(fr) > 1 else [0]
    placed: list = []
    for k in order:
        if any(np.hypot(*(points[k] - q)) < room for q in placed):
            continue
        placed.append(points[k])
        r = fr.iloc[k]
        ax.annotate(str(r["run"]), (unit(r["energy_j"]), r["objective"]), fontsize=7,
                    xytext=(4, 6 if k % 2 else -10), textcoords="offset points")


RANGE_NA_Y = -0.1  # where a range's axis puts n/a (another method's runs): below its min


def _positions(values: pd.Series, span: dict | None = None) -> tuple[np.ndarray, list[str]]:
    """A parameter's values as positions in [0, 1], in reading order; a range's (`span`,
    {min, max, log}) by where its value lies between min and max (on a log scale for a log
    range), labelled with both ends; n/a (another method's setting) below it."""
    if span is not None:
        x = pd.to_numeric(values, errors="coerce").to_numpy(float)
        lo, hi = float(span["min"]), float(span["max"])
        if span.get("log"):
            x, lo, hi = np.log(np.where(x > 0, x, np.nan)), np.log(lo), np.log(hi)
        where = (x - lo) / (hi - lo) if hi > lo else np.full(len(x), 0.5)
        return np.nan_to_num(where, nan=RANGE_NA_Y), [number(span["min"], 3),
                                                       number(span["max"], 3)]
    levels = order(values)
    where = {v: (i / (len(levels) - 1) if len(levels) > 1 else 0.5) for i, v in enumerate(levels)}
    return values.map(where).to_numpy(float), [str(v) for v in levels]


def _numeric(v) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


SPREAD_FROM = 30  # runs: from here on, each value's lines fan out over a band


def line_alpha(runs: int) -> float:
    """Opacity of one run's line or dot: opaque for a few runs, fainter as they pile up, so
    that 1000 overlapping lines show where most runs went instead of one solid block."""
    return 0.8 if runs <= SPREAD_FROM else max(0.04, min(0.8, 12 / runs ** 0.75))


def parallel_coordinates(ok: pd.DataFrame, factors: list[str], unit: EnergyUnit,
                         spans: dict | None = None):
    """One line per run across its parameter values, coloured by its energy (log scale);
    a range's axis (`spans`: dimension -> {min, max, log}) runs from its min to its max.

    From SPREAD_FROM runs on, the runs sharing a value are spread over a band around it,
    cheapest at the bottom, and drawn translucent (line_alpha): otherwise every run with
    the same values draws the same line and the plot shows only the last one drawn."""
    import matplotlib as mpl
    from matplotlib.collections import LineCollection

    fig, ax = _plt().subplots(figsize=(10, 3.8))
    energy = ok["energy_j"].map(unit).to_numpy(float)
    columns = [_positions(ok[f], (spans or {}).get(f)) for f in factors]
    ys = np.column_stack([_spread(pos, energy, len(labels)) if len(ok) >= SPREAD_FROM else pos
                          for pos, labels in columns])
    norm = (mpl.colors.LogNorm(energy.min(), energy.max()) if energy.min() > 0
            else mpl.colors.Normalize(energy.min(), energy.max()))
    cmap = mpl.colormaps["viridis"]
    drawn = np.argsort(-energy, kind="stable")  # cheapest runs drawn last, on top
    xs = np.arange(len(factors), dtype=float)
    lines = LineCollection([np.column_stack([xs, ys[i]]) for i in drawn],
                           colors=cmap(norm(energy[drawn])), alpha=line_alpha(len(ok)),
                           linewidths=1.0 if len(ok) < SPREAD_FROM else 0.6)
    ax.add_collection(lines)
    for x, (f, (positions, labels)) in enumerate(zip(factors, columns)):
        ax.axvline(x, color="black", lw=0.5)
        placed = [(k / (len(labels) - 1) if len(labels) > 1 else 0.5, label)
                  for k, label in enumerate(labels)]
        if f in (spans or {}) and (positions == RANGE_NA_Y).any():
            placed.append((RANGE_NA_Y, "n/a"))  # else they read as values below its min
        for y, label in placed:
            ax.text(x + 0.03, y, label[:14], fontsize=6, va="center",
                    bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 0.5})
    ax.set_xticks(range(len(factors)), [cut(f) for f in factors], rotation=20, fontsize=7)
    ax.set_yticks([])
    ax.set_xlim(-0.1, len(factors) - 0.5)
    ax.set_ylim(-0.2, 1.2)
    bar = fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.01)
    bar.set_label(f"energy ({unit.name})", fontsize=8)
    plain_ticks(bar.ax.yaxis)
    fig.tight_layout()
    return fig


def _spread(positions: np.ndarray, energy: np.ndarray, levels: int) -> np.ndarray:
    """Each run's position moved within its value's band, by its energy's rank there."""
    half = 0.35 / max(levels - 1, 2)  # bands of neighbouring values never touch
    out = positions.copy()
    for level in np.unique(positions):
        members = np.flatnonzero(positions == level)
        rank = np.argsort(np.argsort(energy[members], kind="stable"), kind="stable")
        out[members] = level + ((rank + 0.5) / len(members) - 0.5) * 2 * half
    return out


def energy_boxes(ok: pd.DataFrame, factors: list[str], unit: EnergyUnit, effects: dict):
    """Energy per value of each parameter, parameters in order of effect size."""
    import seaborn as sns

    cols = 3
    rows = (len(factors) + cols - 1) // cols
    fig, axes = _plt().subplots(rows, cols, figsize=(10, 2.4 * rows), squeeze=False)
    data = ok.assign(energy=ok["energy_j"].map(unit))
    for ax, f in zip(axes.flat, factors):
        sns.boxplot(x=data[f].astype(str), y=data["energy"], ax=ax, color="#a5d6a7",
                    fliersize=2, order=[str(v) for v in order(data[f])])
        ax.set_title(f"{cut(f, 40)} (η² {effects.get(f, 0) or 0:.2f})", fontsize=9)
        ax.set_xticks(ax.get_xticks(), [cut(t.get_text(), 16) for t in ax.get_xticklabels()])
        ax.set_xlabel("")
        ax.set_ylabel(unit.name, fontsize=8, rotation=0, labelpad=8)
        ax.tick_params(axis="x", labelrotation=25, labelsize=7)
    for ax in list(axes.flat)[len(factors):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def curves(logs: dict[str, pd.DataFrame], unit: EnergyUnit, objective: Objective | None = None):
    """Loss, the objective's validation metric (accuracy by default), power and cumulative
    energy over epochs, one line per run."""
    from matplotlib.ticker import MaxNLocator

    objective = objective or Objective()
    fig, axes = _plt().subplots(1, 4, figsize=(11, 2.6))
    panels = (("loss", "loss"), (objective.name, f"validation {objective.metric}"),
              ("power_w", "power (W)"), ("energy_j", f"its epochs, summed ({unit.name})"))
    for label, frame in logs.items():
        for ax, (col, title) in zip(axes, panels):
            if col not in frame:
                continue
            y = pd.to_numeric(frame[col], errors="coerce")
            # An epoch with no energy figure ends the summed line there: counted as 0 J,
            # every later point would understate what the run spent
            y = y.cumsum(skipna=False).map(unit) if col == "energy_j" else y
            ax.plot(frame["epoch"] + 1, y, marker="o", ms=2, label=label)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        low, high = ax.get_xlim()
        if high - low < 2:  # one epoch: no integer inside, so float ticks overprinted
            ax.set_xlim(round((low + high) / 2) - 1, round((low + high) / 2) + 1)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def by_group_over_epochs(logs: pd.DataFrame, group: str, column: str = "val_accuracy"):
    """Mean `column` over epochs, one line per value of `group` (band: one standard deviation)."""
    import seaborn as sns

    fig, ax = _plt().subplots(figsize=(5, 3))
    from matplotlib.ticker import MaxNLocator

    sns.lineplot(data=logs.assign(epoch=logs["epoch"] + 1), x="epoch", y=column, hue=group,
                 errorbar="sd", ax=ax, palette="viridis", legend="full")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{column.replace('_', ' ')} by {group}", fontsize=9)
    fig.tight_layout()
    return fig


def energy_against(ok: pd.DataFrame, factor: str, unit: EnergyUnit):
    """Energy per run against a numeric parameter, shortcuts on and off told apart; a
    run's 95 % energy interval as a vertical bar where it has one."""
    fig, ax = _plt().subplots(figsize=(5, 3))
    split = "resnet_shortcuts" if ok.get("resnet_shortcuts", pd.Series()).nunique() > 1 else None
    groups = ok.groupby(ok[split].astype(str)) if split else [("all runs", ok)]
    named = False  # the bars' legend entry: once, by the first group that draws any
    for name, group in groups:
        dots = ax.scatter(group[factor].astype(float), group["energy_j"].map(unit), s=16,
                          label=f"shortcuts {name}" if split else name)
        bars = draw_energy_errors(ax, group[factor].astype(float),
                                  group["energy_j"].map(unit), energy_errors(group, unit),
                                  False, dots.get_facecolor()[0], label=not named)
        named = named or bars is not None
        means = group.groupby(group[factor].astype(float))["energy_j"].mean().map(unit)
        ax.plot(means.index, means.values, lw=1)
    ax.set_xlabel(factor)
    ax.set_ylabel(f"energy ({unit.name})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def against_range(ok: pd.DataFrame, factor: str, span: dict, unit: EnergyUnit,
                  objective: Objective | None = None):
    """The objective and the energy of every run against a range's value: two scatters
    side by side, the value's axis on a log scale for a log range; a run's 95 % energy
    interval as a vertical bar where it has one."""
    objective = objective or Objective()
    x = pd.to_numeric(ok[factor], errors="coerce")
    fig, axes = _plt().subplots(1, 2, figsize=(10, 2.8))
    for ax, (y, label) in zip(axes, ((ok["objective"], objective.label),
                                     (ok["energy_j"].map(unit), f"energy ({unit.name})"))):
        ax.scatter(x, y, s=14, color=GREEN, alpha=dot_alpha(len(ok)), lw=0)
        if label.startswith("energy") and (bars := draw_energy_errors(
                ax, x, y, energy_errors(ok, unit), False, GREEN)) is not None:
            ax.legend(handles=[bars], fontsize=6)
        if span.get("log"):
            ax.set_xscale("log")
        ax.set_xlim(*_padded(float(span["min"]), float(span["max"]), span.get("log")))
        plain_ticks(ax.xaxis)
        if span.get("log") and float(span["max"]) > 30 * float(span["min"]):
            from matplotlib.ticker import LogLocator  # decades only: 1, 2, 5 would collide

            ax.xaxis.set_major_locator(LogLocator(base=10))
        ax.set_xlabel(factor + (" (log scale)" if span.get("log") else ""), fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def _padded(low: float, high: float, log: bool) -> tuple[float, float]:
    """An axis from a range's min to its max, 3 % wider on each side (of its log for a log
    range): a dot at min or max was cut in half by the axis, and a grid range's runs sit
    on its ends."""
    if log and low > 0:
        margin = (high / low) ** 0.03 if high > low else 1.1
        return low / margin, high * margin
    margin = 0.03 * (high - low) if high > low else max(abs(low) * 0.1, 0.5)
    return low - margin, high + margin


def confusion(matrix: list[list[int]]):
    """The confusion matrix as a heatmap, and the accuracy of each class beside it."""
    import seaborn as sns

    counts = np.asarray(matrix)
    n = len(counts)
    fig, (left, right) = _plt().subplots(1, 2, figsize=(10, 3.8),
                                         gridspec_kw={"width_ratios": [1.2, 1]})
    sns.heatmap(counts, annot=n <= 12, fmt="d", cmap="Greens", cbar=False, ax=left,
                annot_kws={"fontsize": 7})
    left.set_xlabel("predicted class")
    left.set_ylabel("true class")
    per_class = np.divide(np.diag(counts), counts.sum(axis=1),
                          out=np.full(n, np.nan), where=counts.sum(axis=1) > 0)
    right.bar(range(n), per_class, color=GREEN)
    right.set_xticks(range(n))
    right.axhline(np.trace(counts) / max(1, counts.sum()), color=RED, lw=1,
                  label="overall accuracy")
    right.set_ylim(0, 1.05)
    right.set_xlabel("class")
    right.set_title("per-class accuracy", fontsize=9)
    right.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
