"""What each source's readings are known to be: their resolution and update period (used by
the interval on every window's joules, `series.power_error`/`counter_error`), and the
sensor's own accuracy, which nothing on the machine can check and which is therefore stated
apart, never mixed into `energy_err_j`.

Each figure names where it comes from. Where no figure is published, it says "unknown".
"""

from __future__ import annotations

from .series import ReadingFacts

# nvidia-smi prints power with two decimals (0.01 W) and its timestamp to the millisecond.
NVIDIA_SMI = ReadingFacts(power_resolution_w=0.01, time_resolution_s=0.001)
# NVML power: milliwatts (nvmlDeviceGetPowerUsage); a time.time() stamp taken at the read.
NVML_POWER = ReadingFacts(power_resolution_w=0.001)
# NVML's total-energy counter: millijoules (nvmlDeviceGetTotalEnergyConsumption). NVIDIA
# publishes no update period for it; 0.1 s is assumed, the order of the power sensor's own
# update period measured by Yang et al. 2023 ("Part-time Power Measurements"), and Zeus
# (v0.6.1) notes the counter can update more slowly than a short window.
NVML_COUNTER = ReadingFacts(counter_resolution_j=0.001, counter_update_s=0.1)
# RAPL: the Energy Status Unit is 2^-16 J (15.3 uJ) by default (Intel SDM vol. 3B,
# MSR_RAPL_POWER_UNIT); 2^-14 J (61 uJ) is taken, the coarsest unit in common use. The
# counters update about every millisecond (the SDM's time unit, 976 us), not exactly on time:
# twice that is taken.
RAPL = ReadingFacts(counter_resolution_j=61e-6, counter_update_s=0.002)

SENSOR_ACCURACY = {
    "measured:nvidia-smi": "+/-5 W per power reading (nvidia-smi(1) manual, 'Power Draw'); "
                           "power.draw is a 1 s average on Ampere and newer (Yang et al. 2023)",
    "measured:nvml-power": "+/-5 W per power reading (nvidia-smi(1) manual, 'Power Draw', the "
                           "same sensor)",
    "measured:nvml-counter": "unknown (NVIDIA publishes no accuracy for the energy counter)",
    "measured:rapl": "unknown (Intel publishes no accuracy figure for RAPL; measured, not "
                     "modelled, from Haswell on: Hackenberg et al. 2015)",
}
ESTIMATE_REASON = ("an estimate (estimated:cpu-time) has no measurement interval: its error "
                   "is the model's (CPU time x watts per core), which nothing here measures")


def facts_for(provenance: str) -> ReadingFacts | None:
    """The reading facts of a source by its provenance; None for an estimate (no interval)."""
    if not provenance.startswith("measured"):
        return None
    for prefix, facts in (("measured:nvidia-smi", NVIDIA_SMI), ("measured:nvml-power", NVML_POWER),
                          ("measured:nvml-counter", NVML_COUNTER), ("measured:rapl", RAPL)):
        if provenance.startswith(prefix):
            return facts
    return ReadingFacts()  # another measured source: its readings taken as exact


def sensor_accuracy(provenance: str) -> str:
    """The sensor's own accuracy, as published, with its source; or "unknown"."""
    if not provenance.startswith("measured"):
        return "not a measurement"
    base = provenance.split(";")[0]
    for prefix, text in SENSOR_ACCURACY.items():
        if base.startswith(prefix):
            return text
    return "unknown"
