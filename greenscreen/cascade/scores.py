"""Confidence scores from a model's probability rows: higher means more confident.

A sample is escalated to the big model unless its score reaches the threshold.
`probabilities` is the one place a model's output becomes probability rows: a
one-unit sigmoid's p(class 1) becomes [1 - p, p], and outputs that are not
probabilities (logits) are refused.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_choice

# How far a row may stray from [0, 1] and from summing to 1: float16 and bfloat16
# softmax rows are off by a few thousandths; logits are off by far more.
TOLERANCE = 1e-2


class NotProbabilities(ValueError):
    """A model output that is not class probabilities; the message says what to change."""


def probabilities(out) -> np.ndarray:
    """A model's output as probability rows (n, K), K >= 2.

    (n, 1) is a one-unit sigmoid's p(class 1): it becomes [1 - p, p], so that class 1 is
    predicted where p > 0.5 and the confidence is that of the class predicted. Rows with
    NaN pass as they are: their score is NaN, and a NaN score is escalated.

    Raises:
        NotProbabilities: not (n, K) or (n, 1), or a row outside [0, 1] or (K >= 2) not
            summing to 1: logits, or several independent sigmoids.
    """
    p = np.asarray(out, dtype=float)
    if p.ndim == 1:
        raise NotProbabilities(
            f"a cascade needs each model's output as class probabilities, one row per "
            f"sample; got shape {p.shape}, one number per sample: a one-unit sigmoid's "
            f"output keeps its last axis, (n, 1) (leave out a Reshape or squeeze after it)")
    if p.ndim != 2 or p.shape[1] < 1:
        raise NotProbabilities(
            f"a cascade needs each model's output as class probabilities, one row per "
            f"sample, shaped (n, classes) or (n, 1) for a one-unit sigmoid; got shape "
            f"{p.shape}. A model with several outputs is not supported")
    if p.shape[1] == 1:
        p = np.concatenate([1.0 - p, p], axis=1)
    _check_rows(p, sigmoid=np.shape(out)[1] == 1)
    return p


def _check_rows(p: np.ndarray, sigmoid: bool) -> None:
    rows = p[~np.isnan(p).any(axis=1)]
    outside = (rows < -TOLERANCE).any(axis=1) | (rows > 1 + TOLERANCE).any(axis=1)
    off_sum = np.abs(rows.sum(axis=1) - 1.0) > TOLERANCE
    bad = np.flatnonzero(outside | off_sum)
    if len(bad) == 0:
        return
    row = np.round(rows[bad[0]], 4).tolist()
    why = ("its values lie outside [0, 1]" if outside[bad[0]] else
           f"its values sum to {sum(row):.4g}, not 1")
    end = ("end the model with a sigmoid (keras.layers.Dense(1, activation='sigmoid'))"
           if sigmoid else "end the model with a softmax (activation='softmax')")
    raise NotProbabilities(
        f"a model's output is not class probabilities: row {row} ({len(bad)} of "
        f"{len(rows)} rows alike): {why}. Scores and thresholds in [0, 1] need "
        f"probabilities: {end}; a model trained with from_logits=True outputs logits, so "
        f"add the activation after it (keras.Sequential([model, "
        f"keras.layers.Activation('softmax')])). Several independent sigmoids (multi-label) "
        f"are not supported")


def maxp(probs: np.ndarray) -> np.ndarray:
    """The top probability."""
    return np.max(probabilities(probs), axis=1)


def difference(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability."""
    top2 = np.sort(probabilities(probs), axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def entropy(probs: np.ndarray) -> np.ndarray:
    """1 - H(p) / log(K): 1 for a one-hot row, 0 for a uniform one."""
    probs = probabilities(probs)
    p = np.clip(probs, 1e-12, 1.0)
    h = -np.sum(p * np.log(p), axis=1)
    return 1.0 - h / np.log(probs.shape[1])


def oracle(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1 where the model is right, 0 where wrong: escalates exactly the mistakes.

    It needs the labels, so it is an upper bound for evaluation only.
    """
    p = probabilities(probs)
    right = (np.argmax(p, axis=1) == np.asarray(labels).reshape(-1)).astype(float)
    # A NaN row is no answer (argmax read it as class 0): NaN, escalated as other scores'
    return np.where(np.isnan(p).any(axis=1), np.nan, right)


SCORES = {"maxp": maxp, "difference": difference, "entropy": entropy, "oracle": oracle}


def score(name: str, probs: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    check_choice("score", name, SCORES)
    if name == "oracle":
        if labels is None:
            raise ValueError("score='oracle' is not valid without labels; allowed: pass y=..., "
                             "or use maxp, difference or entropy")
        return oracle(probs, labels)
    return SCORES[name](probs)
