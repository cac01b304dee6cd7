"""A bounded memory of recent inputs and their predictions: a duplicate needs no model.

`dhash` keys an image by its perceptual difference hash (brightness gradients
of a small grey thumbnail), so re-encoded or slightly noisy copies still match.
`invariants` keys it by the smallest dhash over the eight rotations by 90° and
flips, so rotated and mirrored copies match too.

Keys are computed for a whole batch at once (`PredictionMemory.keys`), and once
per sample: `lookup_batch` returns the keys it computed, which `add_keys` reuses.
A key depends on the pixel values only, not on how the array lies in memory.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache

import numpy as np

from ..validation import check_choice, check_integer

KINDS = ("dhash", "invariants")


# The eight views of an image (rotations by k x 90°, each also mirrored left-right), as
# (image axis, backwards) for the view's rows and for its columns.
VIEWS = (((0, False), (1, False)), ((0, False), (1, True)),  # k = 0
         ((1, True), (0, False)), ((1, True), (0, True)),  # k = 1
         ((0, True), (1, True)), ((0, True), (1, False)),  # k = 2
         ((1, False), (0, True)), ((1, False), (0, False)))  # k = 3


def _blocks(n: int, parts: int, backwards: bool = False) -> list[tuple[int, int]]:
    """`parts` slices covering 0..n, each at least one pixel wide; counted from the end
    when `backwards`, given in image coordinates."""
    edges = np.linspace(0, n, parts + 1).astype(int)
    spans = [(int(edges[i]), int(max(edges[i + 1], edges[i] + 1))) for i in range(parts)]
    return [(n - b, n - a) for a, b in spans] if backwards else spans


def _grey(images) -> np.ndarray:
    """A batch (N, H, W) or (N, H, W, C) as float grey images (N, H, W)."""
    images = np.asarray(images, dtype=float)
    return images.mean(axis=-1) if images.ndim == 4 else images


def _view_blocks(shape, rows: int, cols: int, view) -> list[list[tuple]]:
    """Per thumbnail pixel (i, j) of a view, the image block it averages, as (row span,
    column span, rows backwards, columns backwards) in the image's own coordinates."""
    (axis_i, back_i), (axis_j, back_j) = view
    spans_i, spans_j = _blocks(shape[axis_i], rows, back_i), _blocks(shape[axis_j], cols, back_j)
    if axis_i == 0:
        return [[(si, sj, back_i, back_j) for sj in spans_j] for si in spans_i]
    return [[(sj, si, back_j, back_i) for sj in spans_j] for si in spans_i]  # turned by 90°


@lru_cache(maxsize=32)
def _layout(shape: tuple, rows: int, cols: int, views: tuple) -> tuple[list, np.ndarray]:
    """How to take the views' thumbnails of images of `shape`: the image blocks they
    average, grouped by size as (block numbers, pixel indices, size), and per view the block
    number of each thumbnail pixel.

    A block's pixels are listed in the order NumPy sums it as a slice of the rotated or
    mirrored view (`block.mean()`): the image's rows, then its columns, each in the view's
    direction. Floating-point sums depend on their order; this keeps the keys unchanged."""
    numbers: dict = {}  # block -> number
    where = np.array([[[numbers.setdefault(block, len(numbers)) for block in row]
                       for row in _view_blocks(shape, rows, cols, view)] for view in views])
    by_size: dict = {}
    for block, number in numbers.items():
        pixels = _pixels(block, shape[1])
        by_size.setdefault(len(pixels), []).append((number, pixels))
    groups = [(np.array([n for n, _ in m]), np.array([p for _, p in m]), size)
              for size, m in by_size.items()]
    return groups, where


def _pixels(block, width: int) -> np.ndarray:
    """Flat pixel indices of a block, in its summing order."""
    (r0, r1), (c0, c1), rows_back, cols_back = block
    r = np.arange(r0, r1)[::-1 if rows_back else 1]
    c = np.arange(c0, c1)[::-1 if cols_back else 1]
    return (r[:, None] * width + c).ravel()


def _thumbnails(grey: np.ndarray, rows: int, cols: int, views) -> np.ndarray:
    """Block means of each view of a batch of grey images (N, H, W): (N, views, rows, cols)."""
    n, height, width = grey.shape
    groups, where = _layout((height, width), rows, cols, tuple(views))
    flat = grey.reshape(n, height * width)
    means = np.empty((n, sum(len(numbers) for numbers, _, _ in groups)))
    for numbers, pixels, size in groups:
        # np.take keeps C order: the sum then runs along each block's own pixels.
        means[:, numbers] = np.take(flat, pixels, axis=1).sum(axis=-1) / size
    return np.take(means, where, axis=1)


def _packed_dhashes(images, size: int, views) -> np.ndarray:
    """Per image and view, the packed bits: is each thumbnail pixel brighter than its right
    neighbour? (N, views, bytes)"""
    thumb = _thumbnails(_grey(images), size, size + 1, views)
    bits = thumb[..., 1:] > thumb[..., :-1]
    return np.packbits(bits.reshape(bits.shape[:2] + (-1,)), axis=-1)


def dhashes(images, size: int = 8) -> list[bytes]:
    """`dhash` of each image of a batch (N, H, W) or (N, H, W, C)."""
    return [row.tobytes() for row in _packed_dhashes(images, size, VIEWS[:1])[:, 0]]


def invariant_hashes(images, size: int = 8) -> list[bytes]:
    """`invariant_hash` of each image of a batch (N, H, W) or (N, H, W, C)."""
    return [row.tobytes() for row in _smallest(_packed_dhashes(images, size, VIEWS))]


def _smallest(packed: np.ndarray) -> np.ndarray:
    """Per image, the view whose packed bytes are smallest in byte order (as `min` of the
    `bytes` would choose). packed: (N, views, bytes) -> (N, bytes)."""
    n, _, nbytes = packed.shape
    if nbytes > 8:
        return np.array([min(views, key=bytes) for views in packed])
    padded = np.zeros((n, packed.shape[1], 8), dtype=np.uint8)
    padded[:, :, :nbytes] = packed
    order = padded.view(">u8")[:, :, 0]  # big-endian: integer order is byte order
    return packed[np.arange(n), order.argmin(axis=1)]


def dhash(image: np.ndarray, size: int = 8) -> bytes:
    """Difference hash: is each thumbnail pixel brighter than its right neighbour?"""
    return dhashes(np.asarray(image)[None], size)[0]


def invariant_hash(image: np.ndarray, size: int = 8) -> bytes:
    """The smallest dhash over the dihedral group: rotations by 90° and flips."""
    return invariant_hashes(np.asarray(image)[None], size)[0]


class PredictionMemory:
    """LRU memory of (image hash -> prediction), with its hit rate: for images only,
    batches shaped (N, H, W) or (N, H, W, C) (`keys`).

    Args:
        kind: "dhash" or "invariants".
        capacity: Entries kept; the least recently used go first.

    Example (a batch: each key is computed once, for the lookup and the add):

    ```python
    keys, known = memory.lookup_batch(x)        # known[i] is a class or None
    memory.add_keys([k for k, p in zip(keys, known) if p is None], new_predictions)
    ```
    """

    def __init__(self, kind: str = "dhash", capacity: int = 10_000) -> None:
        check_choice("kind", kind, KINDS)
        check_integer("capacity", capacity, low=1)
        self.kind, self.capacity = kind, capacity
        self._store: OrderedDict[bytes, int] = OrderedDict()
        self._last: tuple[bytes, bytes] | None = None  # (image bytes, key) of the last lookup
        self.hits = self.misses = 0

    def keys(self, images) -> list[bytes]:
        """The key of each image of a batch, computed together.

        Raises:
            ValueError: `images` is not a batch of images, (N, H, W) or (N, H, W, C):
                the keys are perceptual hashes of pictures.
        """
        shape = np.shape(images)
        if len(shape) not in (3, 4):
            raise ValueError(f"PredictionMemory keys images by a perceptual hash: a batch "
                             f"shaped (N, H, W) or (N, H, W, C); got shape {shape}. For "
                             "other inputs, leave the cascade's memory out (memory=None)")
        if len(images) == 0:
            return []
        return (invariant_hashes if self.kind == "invariants" else dhashes)(images)

    def key(self, image: np.ndarray) -> bytes:
        return self.keys(np.asarray(image)[None])[0]

    def lookup_key(self, k: bytes) -> int | None:
        if k in self._store:
            self._store.move_to_end(k)
            self.hits += 1
            return self._store[k]
        self.misses += 1
        return None

    def add_key(self, k: bytes, prediction: int) -> None:
        self._store[k] = int(prediction)
        self._store.move_to_end(k)
        while len(self._store) > self.capacity:
            self._store.popitem(last=False)

    def lookup_batch(self, images) -> tuple[list[bytes], list[int | None]]:
        """The keys of a batch and, per image, the remembered class or None."""
        keys = self.keys(images)
        return keys, [self.lookup_key(k) for k in keys]

    def add_keys(self, keys, predictions) -> None:
        for k, p in zip(keys, predictions):
            self.add_key(k, p)

    def lookup(self, image: np.ndarray) -> int | None:
        k = self.key(image)
        self._last = (_identity(image), k)  # `add` of the same image reuses the key
        return self.lookup_key(k)

    def add(self, image: np.ndarray, prediction: int) -> None:
        last, ident = self._last, _identity(image)
        self.add_key(last[1] if last is not None and last[0] == ident else self.key(image),
                     prediction)

    def __len__(self) -> int:
        return len(self._store)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


def _identity(image) -> bytes:
    """The image's shape, dtype and bytes: equal for equal images."""
    a = np.ascontiguousarray(image)
    return repr((a.shape, a.dtype.str)).encode() + a.tobytes()
