"""The typed run record: RunFolder reads summary.json and results.json into dataclasses."""

import json
import math

from greenscreen_pipeline.records import RunResults, RunSummary
from greenscreen_pipeline.runfolder import RunFolder


def test_a_summary_reads_into_fields_and_keeps_the_document(tmp_path):
    doc = {"energy_j": 120.0, "power_avg_w": 60.0, "duration_s": 2.0,
           "source": "measured:nvml-counter", "backend": "jax", "sample_interval_s": 0.1,
           "t_start": 10.0, "t_end": 13.0, "co2_g": 0.01,
           "attempts": [{"t_start": 10.0, "t_end": 11.0, "energy_j": 50.0, "duration_s": 1.0},
                        {"t_start": 12.0, "t_end": None, "energy_j": None}],
           "devices": [{"index": 0, "uuid": "GPU-1", "name": "NVIDIA H200", "energy_j": 70.0}]}
    (tmp_path / "summary.json").write_text(json.dumps(doc))
    summary = RunFolder(tmp_path).summary()
    assert isinstance(summary, RunSummary)
    assert (summary.energy_j, summary.source, summary.backend) == (120.0, "measured:nvml-counter",
                                                                    "jax")
    assert [a.measured for a in summary.attempts] == [True, False]  # the second was killed
    assert summary.devices[0].name == "NVIDIA H200" and summary.t_end == 13.0
    assert summary.raw["co2_g"] == 0.01  # what has no field is still there


def test_an_old_summary_without_the_newer_keys_still_loads():
    old = RunSummary.from_json({"energy_j": None, "test_accuracy": 0.9})  # before results.json
    assert math.isnan(old.energy_j) and old.source == "none" and old.test_accuracy == 0.9
    assert old.attempts == () and old.devices == () and math.isnan(old.t_start)


def test_results_are_written_and_read_back_by_their_one_writer_and_reader(tmp_path):
    results = RunResults(0.91, 0.3, [[3, 1], [0, 4]], {"keras": "3"}, {"end": 5.0},
                         {"loss": [0.5, 0.3]},
                         {"quantized_test_accuracy": 0.9, "weights_bytes_int8": 10})
    RunFolder(tmp_path).write_results(results)
    assert RunFolder(tmp_path).results() == results
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["test_accuracy"] == 0.91 and on_disk["weights_bytes_int8"] == 10
    assert results.metrics == {"test_accuracy": 0.91, "test_loss": 0.3,
                               "quantized_test_accuracy": 0.9, "weights_bytes_int8": 10}
    assert RunFolder(tmp_path / "absent").results() is None
