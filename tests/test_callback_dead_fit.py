"""A fit that raised and was not closed, then `evaluate` (or `predict`) with the same
SMICallback: the evaluate was counted as the dead fit's validation (and not written), the
fit was never closed; and a closed fit's attempt kept growing with each later call. A
fit's own validation stays its validation, also where the fit was begun by hand (the
pipeline's own training loops). Each test fails before its fix."""

import json
import math

import keras
import pytest
from conftest import processes_running
from test_callbacks import SlowSteps, tiny_data, tiny_model

from greenscreen import SMICallback

pytestmark = pytest.mark.backends("tensorflow", "jax", "torch")
KILLED = "interrupted"  # closed by the callback's next call: it has ended


class RaisesInSecondEpoch(keras.callbacks.Callback):
    """Raises KeyboardInterrupt at the second epoch's first batch end: the first epoch,
    its validation included, ended normally."""

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1:
            raise KeyboardInterrupt

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


class Forwards(keras.callbacks.Callback):
    """Passes Keras's hooks, set_model included, on to an SMICallback whose fit was begun
    by hand, as the pipeline's own-loop runs do; here with the validation's too."""

    def __init__(self, smi):
        super().__init__()
        self.smi = smi

    def set_model(self, model):
        super().set_model(model)
        self.smi.set_model(model)

    def on_epoch_begin(self, epoch, logs=None):
        self.smi.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.smi.on_epoch_end(epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.smi.on_train_batch_end(batch, logs)

    def on_test_begin(self, logs=None):
        self.smi.on_test_begin(logs)

    def on_test_batch_end(self, batch, logs=None):
        self.smi.on_test_batch_end(batch, logs)

    def on_test_end(self, logs=None):
        self.smi.on_test_end(logs)


def summary_of(folder) -> dict:
    return json.loads((folder / "summary.json").read_text())


def dead_fit(tmp_path):
    x, y = tiny_data()
    model, smi = tiny_model(), SMICallback(log_dir=tmp_path, source="nvidia-smi")
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=3, batch_size=64, verbose=0, validation_split=0.25,
                  callbacks=[smi, SlowSteps(0.05), RaisesInSecondEpoch()])
    return model, smi, x, y


@pytest.mark.parametrize("first", ["evaluate", "predict"])
def test_a_call_after_a_fit_that_raised_unclosed_is_its_own(fake_smi, tmp_path, first):
    model, smi, x, y = dead_fit(tmp_path)
    if first == "predict":
        model.predict(x, verbose=0, callbacks=[smi])
    model.evaluate(x, y, verbose=0, callbacks=[smi])
    summary = summary_of(tmp_path)
    inference = summary["inference"]
    assert inference["evaluate"]["calls"] == 1 and inference["evaluate"]["energy_j"] > 0
    assert inference["validation"]["calls"] == 1  # the first epoch's alone
    assert inference["predict"]["calls"] == (first == "predict")
    [attempt] = summary["attempts"]
    assert attempt["ended"] == KILLED and attempt["epochs"] == 1
    assert attempt["energy_j"] > 0 and summary["epochs"] == 1
    assert processes_running(fake_smi.exe, streams_only=True) == []
    model.evaluate(x, y, verbose=0, callbacks=[smi])  # the dead fit's figures stay
    again = summary_of(tmp_path)
    assert again["attempts"] == summary["attempts"]
    assert again["energy_j"] == summary["energy_j"]
    assert again["inference"]["evaluate"]["calls"] == 2


def test_a_closed_fits_attempt_does_not_grow_with_a_later_evaluate(fake_smi, tmp_path):
    """After close(), as README says, an evaluate's new meter measured the closed attempt
    again from its start to the evaluate's end: its energy and duration grew."""
    model, smi, x, y = dead_fit(tmp_path)
    smi.close()
    closed = summary_of(tmp_path)
    model.evaluate(x, y, verbose=0, callbacks=[smi])
    after = summary_of(tmp_path)
    assert after["attempts"] == closed["attempts"]
    assert after["attempts"][0]["ended"] == KILLED
    assert after["energy_j"] == closed["energy_j"]
    assert after["inference"]["evaluate"]["calls"] == 1


def test_validation_in_a_fit_is_its_validation_then_evaluate_is_not(fake_smi, tmp_path):
    x, y = tiny_data()
    model, smi = tiny_model(), SMICallback(log_dir=tmp_path, source="nvidia-smi")
    model.fit(x, y, epochs=2, batch_size=64, verbose=0, validation_split=0.25,
              callbacks=[smi])
    summary = summary_of(tmp_path)
    assert summary["inference"]["validation"]["calls"] == 2
    assert summary["inference"]["evaluate"]["calls"] == 0
    assert [a["ended"] for a in summary["attempts"]] == ["completed"]
    model.evaluate(x, y, verbose=0, callbacks=[smi])
    assert summary_of(tmp_path)["inference"]["evaluate"]["calls"] == 1


def test_a_fit_begun_by_hand_keeps_its_validations(fake_smi, tmp_path):
    """As in an own-loop run: the fit is begun on the SMICallback before the user's fit
    builds its callbacks (set_model comes mid-fit); its validations stay validations and
    no epoch goes NaN."""
    x, y = tiny_data()
    model, smi = tiny_model(), SMICallback(log_dir=tmp_path, source="nvidia-smi")
    smi.on_train_begin()
    history = model.fit(x, y, epochs=3, batch_size=64, verbose=0, validation_split=0.25,
                        callbacks=[Forwards(smi), SlowSteps(0.05)])
    smi.on_train_end()
    assert all(math.isfinite(e) and e > 0 for e in history.history["energy_j"])
    summary = summary_of(tmp_path)
    assert summary["inference"]["validation"]["calls"] == 3
    assert summary["inference"]["evaluate"]["calls"] == 0
    assert [(a["ended"], a["epochs"]) for a in summary["attempts"]] == [("completed", 3)]
