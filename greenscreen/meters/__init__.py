"""Power sources and the `EnergyMeter` that integrates them into energy.

A meter measures several components at once: the GPUs, the CPU packages and the
DRAM ("gpu", "cpu", "dram"). Every figure carries its provenance:
"measured:nvidia-smi", "measured:nvml-counter", "measured:nvml-power",
"measured:rapl" (with ";attributed:..." where a share was charged) or
"estimated:cpu-time", which is never added to a measurement.
"""

from .base import PowerSource, Sample, SourceUnavailable
from .estimate import CpuTimeEstimate
from .meter import EnergyMeter
from .nvidia_smi import NvidiaSmiSource
from .nvml import NvmlSource
from .rapl import RaplSource
from .registry import SOURCE_NAMES, available
from .window import ComponentWindow, Window

__all__ = [
    "SOURCE_NAMES",
    "ComponentWindow",
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
