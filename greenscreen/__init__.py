"""greenscreen: energy-aware training for Keras 3.

The measurement core (`greenscreen.meters`, `greenscreen.carbon`) imports no
deep-learning framework; the Keras callbacks load Keras on first use.
"""

from ._version import __version__
from .carbon import carbon_intensity
from .meters import EnergyMeter, SourceUnavailable, available

_LAZY = {"SMICallback": "callbacks", "EnergyBudget": "callbacks", "EnergyForecast": "callbacks"}

__all__ = ["EnergyBudget", "EnergyForecast", "EnergyMeter", "SMICallback", "SourceUnavailable",
           "__version__", "available", "carbon_intensity"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'greenscreen' has no attribute {name!r}")
