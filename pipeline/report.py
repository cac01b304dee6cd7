"""The PDF report (reportlab + seaborn): the sweep's answer, ready to hand on.

Every user-supplied string is escaped before it enters reportlab markup, and
the same inputs give byte-identical PDFs (reportlab's invariant mode, PNG plots
without metadata).
"""

from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import escape

import pandas as pd
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import (
    Image,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from greenscreen.carbon import carbon_intensity

from . import collect, runfolder
from .runfolder import RunFolder, Unreadable

STYLES = getSampleStyleSheet()


def para(text, style="BodyText") -> Paragraph:
    return Paragraph(escape(str(text)), STYLES[style])


def fmt(value, digits=4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def table(rows: list[list], widths=None) -> Table:
    cells = [[para(fmt(c), "BodyText") for c in row] for row in rows]
    t = Table(cells, colWidths=widths, repeatRows=1)
    t.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dfe8df")),
                           ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                           ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return t


def figure(fig, width=16 * cm) -> Image:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None}, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    buf.seek(0)
    w, h = fig.get_size_inches()
    return Image(buf, width=width, height=width * h / w)


def history_plot(folders: dict[str, Path]):
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    for label, folder in folders.items():
        logs = RunFolder(folder).logs()
        for ax, col in zip(axes, ("loss", "accuracy", "power_w")):
            if col in logs:
                sns.lineplot(x=logs["epoch"], y=pd.to_numeric(logs[col], errors="coerce"),
                             ax=ax, label=label)
            ax.set_title({"power_w": "power (W)"}.get(col, col))
            ax.set_ylabel("")
    fig.tight_layout()
    return fig


def scatter_plot(ok: pd.DataFrame, front: list[dict]):
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(7, 4))
    sns.scatterplot(data=ok, x="energy_j", y="accuracy", ax=ax)
    fr = pd.DataFrame(front)
    ax.plot(fr["energy_j"], fr["accuracy"], color="green", marker="o", label="Pareto front")
    for _, r in ok.iterrows():
        ax.annotate(str(r["run"]), (r["energy_j"], r["accuracy"]), fontsize=7)
    ax.set_xlabel("energy (J)")
    ax.legend()
    return fig


def box_plots(ok: pd.DataFrame, factors: list[str]):
    import matplotlib.pyplot as plt
    import seaborn as sns

    n = max(1, len(factors))
    cols = 3
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.8 * rows), squeeze=False)
    for ax, f in zip(axes.flat, factors):
        sns.boxplot(x=ok[f].astype(str), y=ok["energy_j"], ax=ax)
        ax.set_title(f)
        ax.set_xlabel("")
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    for ax in list(axes.flat)[len(factors):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def build(sweep_dir: "str | Path", out: "str | Path") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    sweep_dir, out = Path(sweep_dir), Path(out)
    analysis = runfolder.read_json(sweep_dir / "analysis.json") or {}
    df = collect.load_sweep(sweep_dir)
    story = [para("greenscreen sweep report", "Title"), para(f"Sweep folder: {sweep_dir}")]
    if not analysis.get("done"):
        story.append(para(f"This sweep has no finished run ({analysis.get('runs', 0)} run "
                          "folders), so there is nothing to rank or recommend yet."))
        for r in analysis.get("failed_or_skipped", []):
            story.append(para(f"run {r.get('run')}: {r.get('status')} {r.get('reason') or ''}"))
        return _write(story, out)
    ok = df[df["run"].isin([r["run"] for r in analysis["top_accuracy"]]) |
            (df["status"] == "done")].dropna(subset=["accuracy", "energy_j"])
    story += title_page(analysis, df, ok, sweep_dir) + [PageBreak()]
    story += top_sections(analysis)
    story += relevance_section(analysis) + [PageBreak()]
    story += recommendation_section(analysis, df, sweep_dir)
    story += plots(analysis, ok, df, sweep_dir)
    return _write(story, out)


def sweep_carbon_intensity(sweep_dir: Path):
    """The intensity the sweep's settings ask for, and which setting chose it."""
    settings = (runfolder.read_json(sweep_dir / "sweep.json") or {}).get("settings", {})
    if settings.get("carbon_intensity") is not None:
        return carbon_intensity(settings["carbon_intensity"]), "settings.carbon_intensity"
    if settings.get("country"):
        return carbon_intensity(country=settings["country"]), "settings.country"
    return carbon_intensity(), "no settings.country or settings.carbon_intensity given"


def title_page(analysis, df, ok, sweep_dir) -> list:
    energy = float(ok["energy_j"].sum())
    co2, chosen_by = sweep_carbon_intensity(sweep_dir)
    devices, dates = set(), []
    for folder in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        s = _summary(folder)
        devices.update(d.get("name", "") for d in s.get("devices", []))
        dates += [s[k] for k in ("t_start", "t_end") if isinstance(s.get(k), (int, float))]
    when = (pd.to_datetime(min(dates), unit="s").strftime("%Y-%m-%d %H:%M") + " to " +
            pd.to_datetime(max(dates), unit="s").strftime("%Y-%m-%d %H:%M UTC")) if dates else "n/a"
    rows = [["figure", "value"],
            ["runs (finished / all)", f"{analysis['done']} / {analysis['runs']}"],
            ["total energy of finished runs", f"{energy:.1f} J = {energy / 3.6e6:.6f} kWh"],
            ["CO2", f"{co2.grams(energy):.3f} g at {co2.g_per_kwh} g/kWh ({co2.source}; "
                    f"{chosen_by})"],
            ["hardware", ", ".join(sorted(d for d in devices if d)) or "not recorded"],
            ["energy sources", ", ".join(analysis.get("sources", []))],
            ["dates", when]]
    out = [Spacer(1, 0.5 * cm), table(rows, [5 * cm, 11 * cm])]
    if analysis.get("note"):
        out.append(para(analysis["note"]))
    return out


def top_sections(analysis) -> list:
    titles = {"top_accuracy": "Top runs by accuracy", "top_energy": "Lowest energy",
              "top_power": "Lowest mean power (the original's measure)",
              "top_efficiency": "Most efficient: accuracy per kWh (and per W)"}
    out = []
    for key, title in titles.items():
        rows = [["run", "accuracy", "energy (J)", "power (W)", "acc/kWh", "acc/W", "source"]]
        rows += [[r["run"], r["accuracy"], r["energy_j"], r["power_w"], r["accuracy_per_kwh"],
                  r["accuracy_per_w"], r["source"]] for r in analysis[key]]
        out += [para(title, "Heading2"), table(rows), Spacer(1, 0.3 * cm)]
    return out


def relevance_section(analysis) -> list:
    out = [para("Which parameters matter", "Heading2")]
    out += [para(line) for line in analysis["relevance_summary"]]
    for target, res in analysis["relevance"].items():
        out.append(para(f"{target}: {res['method']}; random-forest CV R^2 "
                        f"{fmt(res['rf_cv_r2'], 2)}", "Heading4"))
        rows = [["factor", "partial eta^2", "p (Holm)", "Kruskal-Wallis p", "RF importance"]]
        rows += [[r["factor"], r["partial_eta2"], r["p_holm"], r["kw_p"], r["rf_importance"]]
                 for r in res["table"]]
        out.append(table(rows))
        if res["sparse_levels"]:
            out.append(para("Levels with fewer than 5 runs: " + "; ".join(
                f"{f}: {', '.join(v)}" for f, v in res["sparse_levels"].items())))
    return out


def recommendation_section(analysis, df, sweep_dir) -> list:
    rec = analysis["recommendation"]
    out = [para("Recommendation", "Heading2"),
           para(f"Run {rec['run']}: accuracy {rec['accuracy']:.4f} "
                f"(best {rec['best_accuracy']:.4f}, floor {rec['accuracy_floor']}), "
                f"{rec['energy_j']:.1f} J.")]
    rows = [["parameter", "value", "runs with it", "mean energy with (J)", "others (J)"]]
    rows += [[f, w["value"], w["runs_with_value"], w["mean_energy_j_with"],
              w["mean_energy_j_others"]] for f, w in rec["explanation"].items()]
    out.append(table(rows))
    final_folder = RunFolder(sweep_dir / "final")
    final = {**(_summary(final_folder.path) or {}), **(_results(final_folder) or {})} or None
    base = df[df["run"] == "000"]
    rows = [["run", "accuracy", "energy (J)", "power (W)", "duration (s)", "epochs"]]
    if not base.empty:
        b = base.iloc[0]
        epochs = _params(sweep_dir / "000").get("epochs", "n/a")
        rows.append(["baseline (000)", b["accuracy"], b["energy_j"], b["power_w"],
                     b["duration_s"], epochs])
    if final:
        rows.append(["final", final.get("test_accuracy"), final.get("energy_j"),
                     final.get("power_avg_w"), final.get("duration_s"), final.get("epochs")])
        rows[-1][0] = f"final (run {rec['run']}'s configuration)"
    out += [para("Final run next to the baseline", "Heading3"), table(rows)]
    if not final:
        out.append(para("No final run yet: ./greenscreen.sh final"))
    return out


def plots(analysis, ok, df, sweep_dir) -> list:
    out = [PageBreak(), para("Plots", "Heading2")]
    best = analysis["top_efficiency"][0]["run"]
    folders = {f"most efficient ({best})": sweep_dir / best}
    if (sweep_dir / "final" / "logs.csv").exists():
        folders["final"] = sweep_dir / "final"
    out += [para("Loss, accuracy and power over epochs", "Heading4"),
            figure(history_plot(folders))]
    out += [para("Energy vs accuracy, with the Pareto front", "Heading4"),
            figure(scatter_plot(ok, analysis["pareto"]), 13 * cm)]
    factors = [r["factor"] for r in analysis["relevance"]["energy_j"]["table"]]
    if factors:
        out += [PageBreak(), para("Energy per parameter value", "Heading4"),
                figure(box_plots(ok, factors))]
    rows = [["parameter", "value"]] + [[k, v] for k, v in sorted(
        _params(sweep_dir / best).items())]
    out += [para(f"Parameters of the most efficient run ({best})", "Heading4"), table(rows)]
    return out


def _params(folder: Path) -> dict:
    try:
        data = RunFolder(folder).parameters()
    except Unreadable:
        return {}
    return {k: v for k, v in data.items() if not isinstance(v, (dict, list))}


def _summary(folder: Path) -> dict:
    """A run's summary.json, {} if it has none or it cannot be read (the report says n/a)."""
    try:
        return RunFolder(folder).summary() or {}
    except Unreadable:
        return {}


def _results(folder: RunFolder) -> dict:
    try:
        return folder.results() or {}
    except Unreadable:
        return {}


def _write(story, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, invariant=1, title="greenscreen sweep report",
                            author="greenscreen", creator="greenscreen",
                            leftMargin=2 * cm, rightMargin=2 * cm)
    doc.build(story)
    from greenscreen._io import atomic_write_bytes

    atomic_write_bytes(out, buf.getvalue())
    return out

