"""Runs measured per component (GPU + CPU + DRAM): the analysis and report read the split,
tell the CPU's cpu-time share apart from sharing a GPU, and can rank one component."""

import json
from pathlib import Path

import pytest
import yaml

from greenscreen_pipeline import analysis, collect, provenance, report
from greenscreen_pipeline.records import RunSummary
from greenscreen_pipeline.report.totals import plain_source

GPU = "measured:nvml-counter"
RAPL = "measured:rapl;attributed:cpu-time-share"


def write_component_run(folder: Path, bs: int, gpu: float, cpu: float, dram: float,
                        acc: float, gpu_source: str = GPU) -> None:
    """A finished run folder whose summary.json is the split SMICallback writes."""
    folder.mkdir(parents=True)
    (folder / "parameters.yaml").write_text(yaml.safe_dump(
        {"batch_size": bs, "model": "ffnn", "test_accuracy": acc}))
    (folder / "status.json").write_text(json.dumps({"status": "done", "reason": None}))
    total = gpu + cpu + dram
    (folder / "summary.json").write_text(json.dumps({
        "energy_j": total, "power_avg_w": total / 60, "duration_s": 60.0,
        "source": f"{gpu_source} + {RAPL}", "t_start": 1.7e9, "t_end": 1.7e9 + 60,
        "energy_gpu_j": gpu, "energy_cpu_j": cpu, "energy_dram_j": dram,
        "covers": ["gpu", "cpu", "dram"],
        "components": {"gpu": {"energy_j": gpu, "source": gpu_source,
                               "energy_device_j": gpu},
                       "cpu": {"energy_j": cpu, "source": RAPL, "energy_device_j": 2 * cpu},
                       "dram": {"energy_j": dram, "source": RAPL,
                                "energy_device_j": 2 * dram}},
        "unmeasured": {},
        "devices": [{"index": 0, "name": "NVIDIA H200", "component": "gpu", "energy_j": gpu},
                    {"index": 0, "name": "package-0", "component": "cpu", "energy_j": cpu},
                    {"index": 0, "name": "dram", "component": "dram", "energy_j": dram}]}))
    (folder / "logs.csv").write_text("epoch,loss,accuracy,val_accuracy,power_w,energy_j\n"
                                     f"0,0.5,{acc},{acc},{total / 60},{total}\n")


def component_sweep(folder: Path) -> Path:
    """GPU energy falls with the batch size, CPU energy rises with it: the cheapest run
    overall (bs 128) is not the cheapest on the CPU (bs 16)."""
    for i, bs in enumerate([16, 32, 64, 128] * 2):
        write_component_run(folder / f"{i:03d}", bs, gpu=4000 - 20 * bs, cpu=100 + 5 * bs,
                            dram=50.0, acc=0.9)
    return folder


def test_summary_split_reads_into_typed_fields_and_columns(tmp_path):
    sweep = component_sweep(tmp_path)
    summary = RunSummary.from_json(json.loads((sweep / "000" / "summary.json").read_text()))
    assert summary.covers == ("gpu", "cpu", "dram")
    assert summary.components["cpu"].source == RAPL and summary.components["gpu"].measured
    assert [d.component for d in summary.devices] == ["gpu", "cpu", "dram"]
    df = collect.load_sweep(sweep)
    row = df.set_index("run").loc["000"]
    assert (row["energy_gpu_j"], row["energy_cpu_j"], row["energy_dram_j"]) == (3680, 180, 50)
    assert row["energy_j"] == pytest.approx(3680 + 180 + 50)


def test_cpu_time_share_is_not_gpu_sharing_and_both_sources_are_named(tmp_path):
    sweep = component_sweep(tmp_path)
    result = analysis.analyze(sweep)
    assert not result["shared_devices"] and not result["sharing_unknown"]
    assert "runs shared GPUs" not in analysis.summary_text(result)
    text = _pdf_text(report.build(sweep, tmp_path / "r.pdf"))
    assert "runs shared GPUs" not in text
    assert "the GPU's own energy counter (NVML)" in text
    assert "the CPU's RAPL energy counters" in text and "busy CPU time" in text
    # the GPU is named as hardware; the CPU packages as well, but not as a GPU
    assert "NVIDIA H200" in text


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return " ".join(" ".join(p.extract_text() for p in PdfReader(str(path)).pages).split())


@pytest.mark.parametrize("source, words", [
    ("measured:nvidia-smi(power.draw.instant) + " + RAPL,
     ["nvidia-smi power stream (power.draw.instant: instantaneous) at 10",
      "RAPL energy counters (attributed to each run by its share of the node's busy CPU"]),
    ("measured:nvidia-smi;attributed:sm-share",
     ["nvidia-smi power stream (power.draw: a one-second average on Ampere and newer GPUs "
      "but GA100, a near-instant reading on older ones) at 10.0 Hz (attributed to "
      "each run by its share of the GPU's SM utilisation)"]),
    ("measured:nvml-counter + measured:rapl",
     ["the GPU's own energy counter (NVML) + measured: the CPU's RAPL energy counters"]),
])
def test_plain_words_for_joined_sources(source, words):
    text = plain_source(source, 10.0)
    for w in words:
        assert w in text, (w, text)


def test_gpu_attributions_only_count_as_sharing():
    assert not provenance.shares_gpu(f"{GPU} + {RAPL}")
    assert provenance.shares_gpu("measured:nvidia-smi(power.draw.instant);attributed:sm-share")
    assert provenance.shares_gpu("measured:nvml-counter;attributed:even-split + " + RAPL)
    assert provenance.sharing_unknown("measured:nvidia-smi;attributed:sharing-unknown")
    assert provenance.by_sweep(f"measured:nvidia-smi;attributed:sharing-unknown + {RAPL}") \
        == f"measured:nvidia-smi;attributed:even-split-by-sweep + {RAPL}"


def test_analyze_one_component_ranks_its_energy_and_says_so(tmp_path):
    """`greenscreen analyze --component cpu`: the cheapest run on the CPU (batch 16) is not
    the cheapest overall (batch 128); analysis.json and the summary say what was ranked."""
    import subprocess
    import sys

    sweep = component_sweep(tmp_path / "sweep")
    config = tmp_path / "config.yaml"
    config.write_text("settings: {runs: 8}\nconfiguration:\n  batch_size: {values: [16, 32]}\n")
    total = analysis.analyze(sweep)
    assert total["energy"] == {"component": None}
    assert total["top_energy"][0]["energy_j"] == pytest.approx(4000 - 20 * 128 + 740 + 50)
    done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "analyze",
                           "--config", str(config), "--sweep-dir", str(sweep),
                           "--component", "cpu"], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ranked by CPU energy (energy_cpu_j), not the total" in done.stdout
    result = json.loads((sweep / "analysis.json").read_text())
    assert result["energy"]["component"] == "cpu" and result["energy"]["runs_without_it"] == 0
    assert result["top_energy"][0]["energy_j"] == pytest.approx(180)  # batch 16's CPU
    assert result["recommendation"]["energy_j"] == pytest.approx(180)
    # final measures and compares total energy: page 1 and the table said it as the CPU's
    from greenscreen_pipeline import comparison
    from greenscreen_pipeline.objective import Objective

    runs = {side: [{"folder": f"final/{side}-s{k}", "status": "done", "reason": None,
                    "objective": 0.9, "energy_j": e, "source": RAPL}
                   for k, e in enumerate(values)]
            for side, values in {"recommended": [400.0, 410.0, 420.0],
                                 "baseline": [500.0, 505.0, 510.0]}.items()}
    (sweep / "final").mkdir()
    (sweep / "final" / "comparison.json").write_text(json.dumps(
        comparison.compare(runs, [1, 2, 3], Objective())))
    text = _pdf_text(report.build(sweep, tmp_path / "r.pdf"))
    assert "the CPU's measured energy only (energy_cpu_j" in text
    assert "Final runs against the baseline (their total energy, not the CPU's alone):" in text
    assert ("The sweep's runs: the CPU's energy (analyze --component); the final runs: "
            "their total energy") in text
    for part in ("GPU", "CPU", "DRAM"):
        assert f"{part} " in text and "measured in 8 of 8 runs" in text
    bad = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "analyze", "--config",
                          str(config), "--component", "disk"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert bad.returncode == 2 and "invalid choice: 'disk'" in bad.stderr
