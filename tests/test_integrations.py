"""Where users already look: the per-component energy reaches TensorBoard's event file and
MLflow's Keras autologging (a local file store) with no glue code, read back from disk."""

import glob
import os
import time
from pathlib import Path

import keras
import powercap
import pytest
from conftest import UUID0
from powercap import zones
from test_callbacks import SlowSteps, tiny_data, tiny_model

from greenscreen import SMICallback

pytestmark = pytest.mark.backends("tensorflow", "jax", "torch")
KEYS = ("energy_j", "energy_gpu_j", "energy_cpu_j", "energy_dram_j", "power_w")


@pytest.fixture
def node(fake_smi, tmp_path, monkeypatch):
    """One fake GPU and a fake powercap tree, both measured by "auto"."""
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": 200.0}}])
    (tmp_path / "rapl").mkdir()
    with powercap.running(tmp_path / "rapl", zones(time.time())) as folder:
        monkeypatch.setenv("GREENSCREEN_POWERCAP_ROOT", str(folder))
        yield


@pytest.mark.backends("tensorflow")  # Keras's TensorBoard callback writes through tf.summary
def test_tensorboard_event_file_holds_energy_and_its_components_per_epoch(node, tmp_path):
    x, y = tiny_data()
    history = tiny_model().fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[
        SMICallback(log_dir=None, interval=0.05),
        keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb")), SlowSteps(0.05)])
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb" / "train"),
                              size_guidance={"tensors": 0}).Reload()
    for key in KEYS:  # the event file, read back: one scalar per epoch
        steps = {e.step: float(tf.make_ndarray(e.tensor_proto))
                 for e in events.Tensors(f"epoch_{key}")}
        assert sorted(steps) == [0, 1, 2]
        assert [steps[s] for s in range(3)] == pytest.approx(history.history[key], rel=1e-6)


def test_mlflow_autolog_records_energy_and_its_components_per_epoch(node, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow

    store = tmp_path / "mlruns"
    mlflow.set_tracking_uri(store.as_uri())
    mlflow.keras.autolog(log_models=False, silent=True)
    try:
        x, y = tiny_data()
        with mlflow.start_run() as run:
            history = tiny_model().fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[
                SMICallback(log_dir=None, interval=0.05), SlowSteps(0.05)])
    finally:
        mlflow.keras.autolog(disable=True)
        mlflow.set_tracking_uri(None)
    (metrics,) = glob.glob(str(store / "*" / run.info.run_id / "metrics"))
    for key in KEYS:  # the store's own files: "timestamp value step" per line
        lines = [line.split() for line in Path(metrics, key).read_text().splitlines()]
        assert [int(step) for _, _, step in lines] == [0, 1, 2]
        assert [float(v) for _, v, _ in lines] == pytest.approx(history.history[key], rel=1e-6)
    assert os.path.exists(os.path.join(metrics, "loss"))
