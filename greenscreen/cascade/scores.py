"""Confidence scores from a model's softmax rows: higher means more confident.

A sample is escalated to the big model when its score is below the threshold.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_choice


def maxp(probs: np.ndarray) -> np.ndarray:
    """The top probability."""
    return np.max(probs, axis=1)


def difference(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability."""
    top2 = np.sort(probs, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def entropy(probs: np.ndarray) -> np.ndarray:
    """1 - H(p) / log(K): 1 for a one-hot row, 0 for a uniform one."""
    p = np.clip(probs, 1e-12, 1.0)
    h = -np.sum(p * np.log(p), axis=1)
    return 1.0 - h / np.log(probs.shape[1])


def oracle(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1 where the model is right, 0 where wrong: escalates exactly the mistakes.

    It needs the labels, so it is an upper bound for evaluation only.
    """
    return (np.argmax(probs, axis=1) == np.asarray(labels).reshape(-1)).astype(float)


SCORES = {"maxp": maxp, "difference": difference, "entropy": entropy, "oracle": oracle}


def score(name: str, probs: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    check_choice("score", name, SCORES)
    if name == "oracle":
        if labels is None:
            raise ValueError("score='oracle' is not valid without labels; allowed: pass y=..., "
                             "or use maxp, difference or entropy")
        return oracle(probs, labels)
    return SCORES[name](np.asarray(probs, dtype=float))
