"""One rule for "estimated" and "measured" (`greenscreen.provenance`), read alike by the
callbacks' summary.json and by every reader of run folders in the pipeline."""

import pandas as pd
import pytest

from greenscreen.provenance import is_estimated, is_measured
from greenscreen_pipeline import analysis, provenance
from greenscreen_pipeline.records import Component

SOURCES = [  # (source, estimated in part, measured in every part)
    ("measured:nvidia-smi", False, True),
    ("measured:nvml-counter + measured:rapl;attributed:cpu-time-share", False, True),
    ("measured:rapl + estimated:cpu-time", True, False),  # measured once, estimated once
    ("estimated:cpu-time", True, False),
    ("estimated:cpu-time;attributed:cpu-time-share", True, False),
    ("none", False, False),
    ("", False, False),
    ("measured:nvml-counter + unknown", False, False),  # a part of unknown provenance
    ("unknown", False, False),
]


@pytest.mark.parametrize("source,estimated,measured", SOURCES)
def test_the_library_and_the_pipeline_read_a_provenance_alike(source, estimated, measured):
    assert is_estimated(source) is estimated and is_measured(source) is measured
    assert provenance.estimated(source) is estimated  # the pipeline's readers
    assert Component(1.0, source).measured is measured


def test_a_component_measured_once_and_estimated_once_is_said_to_be_estimated():
    """`analyze --component cpu`: a run whose CPU figure is in part an estimate is left out
    as not measured, not as a run whose summary.json lacks the figure."""
    df = pd.DataFrame({"run": ["000", "001"], "status": ["done", "done"],
                       "objective": [0.9, 0.8], "energy_j": [float("nan")] * 2,
                       "cpu_source": ["measured:rapl + estimated:cpu-time", "measured:rapl"]})
    why = analysis.without_component(df, "cpu")
    assert why["000"] == "its CPU energy is measured:rapl + estimated:cpu-time, not measured"
    assert why["001"] == "summary.json has no CPU energy figure (measured:rapl)"


def test_what_the_search_cost_names_a_run_s_measured_part_beside_its_estimate():
    """A state's runs whose GPUs were measured (1000 J each) and CPUs estimated (34 J)
    read "estimated" alone in analysis.json's energy_by_state: each run's measured
    components count as measured, the rest as estimated."""
    from greenscreen_pipeline import search_cost

    df = pd.DataFrame({"status": ["done", "done"], "energy_j": [1034.0, 1030.0],
                       "source": ["measured:nvidia-smi + estimated:cpu-time"] * 2,
                       "energy_gpu_j": [1000.0, 1000.0],
                       "energy_cpu_j": [float("nan")] * 2,
                       "energy_dram_j": [float("nan")] * 2})
    state = search_cost.energy_by_state(df)["done"]
    assert state == {"runs": 2, "energy_j": 2064.0, "provenance": "measured + estimated"}
    wholly = df.assign(source="estimated:cpu-time", energy_gpu_j=float("nan"))
    assert search_cost.energy_by_state(wholly)["done"]["provenance"] == "estimated"


def test_energy_of_no_recorded_provenance_is_never_a_state_s_measured_energy():
    """100 J measured and 50 J with no source read "measured" in energy_by_state."""
    from greenscreen_pipeline import search_cost

    df = pd.DataFrame({"status": ["done", "done"], "energy_j": [100.0, 50.0],
                       "source": ["measured:nvidia-smi", "none"],
                       "energy_gpu_j": [100.0, float("nan")]})
    assert search_cost.energy_by_state(df)["done"] == {
        "runs": 2, "energy_j": 150.0, "provenance": "measured + provenance not recorded"}
