"""How often the final comparison's 95 % intervals hold the truth (`comparison.compare`).

Simulated seeds, so the true saving and change are known: the recommended and the
baseline run of each seed drawn from a stated noise model, `compare` run on them, and
the share of draws whose interval holds the truth counted (its coverage: 0.95 is right).
Beside it, the percentile bootstrap `compare` used before (scipy.stats.bootstrap, paired,
999 resamples), on the same draws. Noise models: independent normal seeds; pairs that
share a machine drift (correlation 0.8); skewed (log-normal) seed noise.

    python benchmarks/comparison_coverage.py [--draws 2000] [--out results/....json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import emit  # noqa: E402

from greenscreen_pipeline import comparison  # noqa: E402
from greenscreen_pipeline.objective import Objective  # noqa: E402

REC_J, BASE_J = 10.0, 20.0  # true means: the saving is 0.5
SAVING = 1 - REC_J / BASE_J


def draw(rng: np.random.Generator, model: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """One comparison's seeds: (recommended, baseline) energies, means REC_J and BASE_J."""
    if model == "normal":
        return rng.normal(REC_J, 1.0, n), rng.normal(BASE_J, 1.0, n)
    if model == "drift":  # each seed's machine state shared by both runs: correlation 0.8
        shared, own = rng.normal(0, 1, n), rng.normal(0, 1, (2, n))
        noise = np.sqrt(0.8) * shared + np.sqrt(0.2) * own
        return REC_J + noise[0], BASE_J + 2.0 * noise[1]
    sigma = 0.25  # log-normal with the stated means: skewed to the right
    return (REC_J * rng.lognormal(-sigma ** 2 / 2, sigma, n),
            BASE_J * rng.lognormal(-sigma ** 2 / 2, sigma, n))


def runs_of(rec: np.ndarray, base: np.ndarray) -> dict:
    """comparison.read_runs' form, every seed done, one measured source."""
    return {side: [{"folder": f"{side}-s{k}", "status": "done", "reason": None,
                    "objective": 0.9, "energy_j": float(e), "source": "measured:nvidia-smi"}
                   for k, e in enumerate(values)]
            for side, values in (("recommended", rec), ("baseline", base))}


def bootstrap(rec: np.ndarray, base: np.ndarray, seed: int) -> tuple[float, float]:
    """The interval `compare` gave before: a paired percentile bootstrap of the saving."""
    from scipy import stats

    result = stats.bootstrap((rec, base), lambda r, b, axis=-1: 1 - r.mean(axis) / b.mean(axis),
                             paired=True, vectorized=True, n_resamples=999,
                             method="percentile", rng=np.random.default_rng(seed))
    return tuple(result.confidence_interval)


def coverage(model: str, n: int, draws: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    held = {"t_fieller": 0, "bootstrap_before": 0}
    widths: dict[str, list[float]] = {key: [] for key in held}
    unbounded = 0
    for k in range(draws):
        rec, base = draw(rng, model, n)
        ci = comparison.compare(runs_of(rec, base), list(range(n)),
                                Objective())["energy_saving"]["ci95"]
        if ci is None:
            unbounded += 1  # no interval stated: counted as not holding the truth
        for key, (low, high) in (("t_fieller", ci or (np.nan, np.nan)),
                                 ("bootstrap_before", bootstrap(rec, base, k))):
            held[key] += bool(low <= SAVING <= high)
            widths[key].append(high - low)
    return {"noise": model, "seeds": n, "draws": draws, "no_interval": unbounded,
            **{f"coverage_{key}": held[key] / draws for key in held},
            **{f"median_width_{key}": float(np.nanmedian(widths[key])) for key in held}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    rows = [coverage(model, n, args.draws, args.seed)
            for model in ("normal", "drift", "lognormal") for n in (3, 5, 10)]
    emit({"true_saving": SAVING, "confidence": comparison.CONFIDENCE, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
