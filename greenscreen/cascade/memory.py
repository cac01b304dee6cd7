"""A bounded memory of recent inputs and their predictions: a duplicate needs no model.

`dhash` keys an image by its perceptual difference hash (brightness gradients
of a small grey thumbnail), so re-encoded or slightly noisy copies still match.
`invariants` keys it by the smallest dhash over the eight rotations by 90° and
flips, so rotated and mirrored copies match too.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..validation import check_choice, check_number

KINDS = ("dhash", "invariants")


def _thumbnail(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    grey = image.mean(axis=-1) if image.ndim == 3 else image
    r_idx = np.linspace(0, grey.shape[0], rows + 1).astype(int)
    c_idx = np.linspace(0, grey.shape[1], cols + 1).astype(int)
    return np.array([[grey[r_idx[i]:max(r_idx[i + 1], r_idx[i] + 1),
                           c_idx[j]:max(c_idx[j + 1], c_idx[j] + 1)].mean()
                      for j in range(cols)] for i in range(rows)])


def dhash(image: np.ndarray, size: int = 8) -> bytes:
    """Difference hash: is each thumbnail pixel brighter than its right neighbour?"""
    thumb = _thumbnail(np.asarray(image, dtype=float), size, size + 1)
    return np.packbits(thumb[:, 1:] > thumb[:, :-1]).tobytes()


def invariant_hash(image: np.ndarray, size: int = 8) -> bytes:
    """The smallest dhash over the dihedral group: rotations by 90° and flips."""
    image = np.asarray(image, dtype=float)
    variants = []
    for k in range(4):
        rotated = np.rot90(image, k, axes=(0, 1))
        variants += [rotated, rotated[:, ::-1]]
    return min(dhash(v, size) for v in variants)


class PredictionMemory:
    """LRU memory of (input hash -> prediction), with its hit rate.

    Args:
        kind: "dhash" or "invariants".
        capacity: Entries kept; the least recently used go first.
    """

    def __init__(self, kind: str = "dhash", capacity: int = 10_000) -> None:
        check_choice("memory", kind, KINDS)
        check_number("capacity", capacity, low=1)
        self.kind, self.capacity = kind, capacity
        self._store: OrderedDict[bytes, int] = OrderedDict()
        self.hits = self.misses = 0

    def key(self, image: np.ndarray) -> bytes:
        return invariant_hash(image) if self.kind == "invariants" else dhash(image)

    def lookup(self, image: np.ndarray) -> int | None:
        k = self.key(image)
        if k in self._store:
            self._store.move_to_end(k)
            self.hits += 1
            return self._store[k]
        self.misses += 1
        return None

    def add(self, image: np.ndarray, prediction: int) -> None:
        k = self.key(image)
        self._store[k] = int(prediction)
        self._store.move_to_end(k)
        while len(self._store) > self.capacity:
            self._store.popitem(last=False)

    def __len__(self) -> int:
        return len(self._store)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
