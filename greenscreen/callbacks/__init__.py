"""Keras callbacks that measure, budget and forecast training energy."""

from .budget import EnergyBudget
from .forecast import EnergyForecast
from .smi import SMICallback

__all__ = ["EnergyBudget", "EnergyForecast", "SMICallback"]
