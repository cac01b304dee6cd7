"""Power sources and the `EnergyMeter` that integrates them into energy.

Every figure carries its provenance: "measured:nvidia-smi",
"measured:nvml-counter", "measured:nvml-power", "measured:rapl" or
"estimated:cpu-time".
"""

from .base import PowerSource, Sample, SourceUnavailable
from .estimate import CpuTimeEstimate
from .meter import EnergyMeter, Window
from .nvidia_smi import NvidiaSmiSource
from .nvml import NvmlSource
from .rapl import RaplSource
from .registry import SOURCE_NAMES, available

__all__ = [
    "SOURCE_NAMES",
    "CpuTimeEstimate",
    "EnergyMeter",
    "NvidiaSmiSource",
    "NvmlSource",
    "PowerSource",
    "RaplSource",
    "Sample",
    "SourceUnavailable",
    "Window",
    "available",
]
