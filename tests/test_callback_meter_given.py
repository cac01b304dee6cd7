"""SMICallback with a power source or a meter of yours: summary.json says the interval
they sampled at, and a meter the callback started is stopped by it."""

import json
from pathlib import Path

import pytest
from test_callbacks import tiny_data, tiny_model

from greenscreen import EnergyMeter, SMICallback
from greenscreen.meters.nvidia_smi import NvidiaSmiSource

pytestmark = pytest.mark.backends("tensorflow", "jax", "torch")


def fit(smi: SMICallback) -> dict:
    x, y = tiny_data(64)
    tiny_model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[smi])
    return json.loads((smi.log_dir / "summary.json").read_text())


def test_summary_says_the_interval_a_source_of_yours_sampled_at(fake_smi, tmp_path):
    """The source kept its own 0.5 s (nvidia-smi --loop-ms=500); summary.json said the
    callback's default 0.1 s, and the report a stream at 10 Hz."""
    summary = fit(SMICallback(log_dir=tmp_path, source=NvidiaSmiSource(interval=0.5)))
    assert summary["sample_interval_s"] == 0.5


def test_a_meter_given_stopped_is_stopped_after_the_fit(fake_smi, tmp_path):
    """The callback started it and left it running: its nvidia-smi stream outlived the fit."""
    meter = EnergyMeter(source="nvidia-smi", interval=0.25)
    summary = fit(SMICallback(log_dir=tmp_path, meter=meter))
    assert not meter.running
    assert summary["sample_interval_s"] == 0.25 and summary["energy_j"] > 0


def test_a_running_meter_given_is_left_running(fake_smi, tmp_path):
    meter = EnergyMeter(source="nvidia-smi", interval=0.05).start()
    try:
        fit(SMICallback(log_dir=tmp_path, meter=meter))
        assert meter.running
    finally:
        meter.stop()


def logging_smi(fake, folder: Path, monkeypatch) -> Path:
    """A wrapper of the fake nvidia-smi that appends each call's arguments to a log."""
    log, wrapper = folder / "calls.log", folder / "bin" / "logging-nvidia-smi"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {fake.exe} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("GREENSCREEN_NVIDIA_SMI", str(wrapper))
    return log


def probes(log: Path) -> list[str]:
    """The calls that ask nvidia-smi whether it can run: not the stream, not pmon."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [c for c in lines if "--loop-ms" not in c and not c.startswith("pmon")
            and "--query-compute-apps" not in c]


def test_evaluate_and_predict_do_not_probe_the_gpus_again(fake_smi, tmp_path, monkeypatch):
    """Each evaluate or predict with the callback planned a meter anew: two nvidia-smi
    probes a call, and with a hung nvidia-smi its 2 s timeout every call (review)."""
    log = logging_smi(fake_smi, tmp_path, monkeypatch)
    x, y = tiny_data(64)
    model = tiny_model()
    smi = SMICallback(log_dir=tmp_path / "logs", source="auto")
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[smi])
    first = probes(log)
    assert first  # the first start asked whether nvidia-smi runs
    for _ in range(3):
        model.evaluate(x, y, verbose=0, callbacks=[smi])
    model.predict(x, verbose=0, callbacks=[smi])
    assert probes(log) == first  # asked once for the callback's life
    summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert summary["inference"]["evaluate"]["calls"] == 3
    assert summary["inference"]["evaluate"]["energy_j"] > 0
