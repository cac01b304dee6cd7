"""greenscreen: energy-aware training for Keras 3.

The measurement core lives in `greenscreen.meters` and imports no deep-learning
framework; the Keras-facing names are loaded on first use.
"""

from ._version import __version__
from .meters import EnergyMeter, SourceUnavailable, available

__all__ = ["EnergyMeter", "SourceUnavailable", "__version__", "available"]
