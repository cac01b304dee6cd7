"""Two-model inference cascades with measured energy per prediction.

`Cascade` answers with a small model and escalates unsure samples to a big one;
`find_threshold` picks the threshold on a validation split with measured costs;
`PredictionMemory` answers duplicates without any model; `heterogeneity_matrix`
finds complementary pairs. Command line: `python -m greenscreen.cascade`.
"""

from .cascade import BIG, MEMORY, SMALL, Cascade, CascadeResult
from .evaluation import add_duplicates, heterogeneity_matrix
from .memory import PredictionMemory, dhash, dhashes, invariant_hash, invariant_hashes
from .scores import (
    SCORES,
    NotProbabilities,
    difference,
    entropy,
    maxp,
    oracle,
    probabilities,
    score,
)
from .threshold import ThresholdSearch, find_threshold, measure

__all__ = ["BIG", "MEMORY", "SCORES", "SMALL", "Cascade", "CascadeResult", "NotProbabilities",
           "PredictionMemory", "ThresholdSearch", "add_duplicates", "dhash", "dhashes",
           "difference", "entropy", "find_threshold", "heterogeneity_matrix", "invariant_hash",
           "invariant_hashes", "maxp", "measure", "oracle", "probabilities", "score"]
