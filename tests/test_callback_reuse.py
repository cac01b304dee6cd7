"""One SMICallback used again after an interrupted call, and a callback of its own for
evaluate or for appending: the log_dir, the meter and summary.json stay right (faults a
hunt found, each failing before its fix)."""

import csv
import json
import time
import warnings

import keras
import pytest
from conftest import UUID0, processes_running
from test_callbacks import tiny_data, tiny_model

from greenscreen import SMICallback

pytestmark = pytest.mark.backends("tensorflow", "jax", "torch")
LOCKED_OUT = "is training a model that writes there"


class RaisesAt(keras.callbacks.Callback):
    """Raises `error` as predict begins (after SMICallback's own begin: its meter runs and
    it holds log_dir; in a batch, a JAX model would be left with its variables purged,
    Keras's own fault) or at the first training batch."""

    def __init__(self, error):
        super().__init__()
        self.error = error

    def on_predict_begin(self, logs=None):
        raise self.error

    def on_train_batch_end(self, batch, logs=None):
        raise self.error


def summary_of(folder) -> dict:
    return json.loads((folder / "summary.json").read_text())


@pytest.mark.parametrize("closed", [True, False])
def test_an_interrupted_predict_does_not_lock_its_callback_out_of_its_log_dir(
        fake_smi, tmp_path, closed):
    """Ctrl-C in predict, then the same callback in a fit: it warned that another
    process (its own pid) wrote there and wrote no logs.csv or summary.json again."""
    x, y = tiny_data()
    model, smi = tiny_model(), SMICallback(log_dir=tmp_path, source="nvidia-smi")
    with pytest.raises(KeyboardInterrupt):
        model.predict(x, verbose=0, callbacks=[smi, RaisesAt(KeyboardInterrupt())])
    if closed:
        smi.close()  # as README says: it stops the meter and lets go of log_dir
        assert processes_running(fake_smi.exe) == []
    else:  # not closed: the next call takes log_dir again all the same
        model.predict(x, verbose=0, callbacks=[smi])
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[smi])
    assert not [w for w in said if LOCKED_OUT in str(w.message)]
    summary = summary_of(tmp_path)
    assert summary["epochs"] == 2 and summary["energy_j"] > 0
    assert len(list(csv.DictReader(open(tmp_path / "logs.csv")))) == 2


def test_a_callback_used_again_after_failed_fits_leaves_no_meter_running(fake_smi,
                                                                          tmp_path):
    """Three fits that raised, each without close(), then one that ends: every fit's
    reset left its nvidia-smi process and threads running (1, 2, then 3 of them)."""
    x, y = tiny_data()
    model, smi = tiny_model(), SMICallback(log_dir=tmp_path, source="nvidia-smi")
    for _ in range(3):
        with pytest.raises(ValueError):
            model.fit(x, y, epochs=2, batch_size=64, verbose=0,
                      callbacks=[smi, RaisesAt(ValueError("broken"))])
        assert len(processes_running(fake_smi.exe, streams_only=True)) <= 1  # the failed fit's
    model.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[smi])
    assert processes_running(fake_smi.exe) == []
    assert summary_of(tmp_path)["epochs"] == 1


def test_evaluate_with_a_callback_of_its_own_adds_to_the_fits_summary(fake_smi, tmp_path):
    """summary.json went from the fit's energy and 3 epochs to energy_j null, epochs 0
    and one made-up attempt "running (or killed)", while logs.csv kept the 3 epochs."""
    x, y = tiny_data()
    model = tiny_model()
    model.fit(x, y, epochs=3, batch_size=64, verbose=0,
              callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    fitted = summary_of(tmp_path)
    for calls in (1, 2):
        model.evaluate(x, y, verbose=0,
                       callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
        after = summary_of(tmp_path)
        for key in ("energy_j", "epochs", "attempts", "source", "covers"):
            assert after[key] == fitted[key], key
        evaluated = after["inference"]["evaluate"]
        assert evaluated["calls"] == fitted["inference"]["evaluate"]["calls"] + calls
        assert evaluated["energy_j"] > fitted["inference"]["evaluate"]["energy_j"]
    assert after["inference"]["validation"] == fitted["inference"]["validation"]


def test_append_keeps_the_earlier_fits_attempts_in_the_summary(fake_smi, tmp_path):
    """With append=True alone, summary.json counted 3 epochs (every row of logs.csv) but
    the energy and the one attempt of the last fit."""
    x, y = tiny_data()
    model = tiny_model()
    model.fit(x, y, epochs=2, batch_size=64, verbose=0,
              callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    model.fit(x, y, epochs=1, batch_size=64, verbose=0,
              callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi", append=True)])
    summary = summary_of(tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "logs.csv")))
    assert summary["epochs"] == len(rows) == 3
    assert [a["epochs"] for a in summary["attempts"]] == [2, 1]
    assert summary["energy_j"] == pytest.approx(sum(a["energy_j"] for a in
                                                    summary["attempts"]))
    assert summary["energy_j"] >= sum(float(r["energy_j"]) for r in rows) > 0


def test_evaluate_adds_to_a_summary_whose_validation_measured_nothing(fake_smi, tmp_path):
    """The fit's validation energy is stored as null (power [N/A] throughout): adding an
    evaluate to it raised TypeError, and the callback then kept log_dir and its meter."""
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200"}],
                       na=["power.draw", "power.draw.instant", "power.draw.average"])
    x, y = tiny_data()
    model = tiny_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the meter's warning: nothing measured
        model.fit(x, y, epochs=1, batch_size=64, verbose=0, validation_data=(x, y),
                  callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi",
                                         first_sample_timeout=0.2)])
        assert summary_of(tmp_path)["inference"]["validation"]["energy_j"] is None
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            model.evaluate(x, y, verbose=0, callbacks=[SMICallback(
                log_dir=tmp_path, source="nvidia-smi", first_sample_timeout=0.2)])
    assert not [w for w in said if "TypeError" in str(w.message)], [str(w.message)
                                                                    for w in said]
    assert processes_running(fake_smi.exe) == []
    assert summary_of(tmp_path)["inference"]["evaluate"]["calls"] == 1


def test_an_evaluating_callback_adds_to_the_latest_fit_not_the_one_it_first_read(
        fake_smi, tmp_path):
    """A callback that evaluated, then another callback's fit, then the first evaluates
    again: summary.json went back to the first fit's, with every call counted again."""
    x, y = tiny_data()
    model, evaluating = tiny_model(), SMICallback(log_dir=tmp_path, source="nvidia-smi")
    model.fit(x, y, epochs=1, batch_size=64, verbose=0,
              callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    model.evaluate(x, y, verbose=0, callbacks=[evaluating])
    model.fit(x, y, epochs=2, batch_size=64, verbose=0,
              callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    latest = summary_of(tmp_path)
    model.evaluate(x, y, verbose=0, callbacks=[evaluating])
    after = summary_of(tmp_path)
    assert after["epochs"] == 2 and after["attempts"] == latest["attempts"]
    assert after["inference"]["evaluate"]["calls"] == \
        latest["inference"]["evaluate"]["calls"] + 1


def test_evaluate_alone_records_no_fit_attempt(fake_smi, tmp_path):
    """A callback that only evaluated wrote a made-up attempt "running (or killed)" with
    null energy; a fit appending there then carried it, and its total became null."""
    x, y = tiny_data()
    model = tiny_model()
    for calls in (1, 2):
        model.evaluate(x, y, verbose=0,
                       callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
        summary = summary_of(tmp_path)
        assert summary["attempts"] == [] and summary["energy_j"] is None
        assert summary["inference"]["evaluate"]["calls"] == calls
        assert summary["source"] == "measured:nvidia-smi"
    model.fit(x, y, epochs=1, batch_size=64, verbose=0,
              callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi", append=True)])
    summary = summary_of(tmp_path)
    assert [a["ended"] for a in summary["attempts"]] == ["completed"]
    assert summary["energy_j"] > 0


def test_a_fit_with_no_epoch_left_keeps_the_files_of_the_epochs_before(fake_smi, tmp_path):
    """A script that resumes its model is run again once training is over: `fit(epochs=3,
    initial_epoch=3)` trains nothing, and a new SMICallback on the same log_dir started
    afresh there, deleting logs.csv and rewriting summary.json as 0 epochs (review)."""
    x, y = tiny_data()
    model = tiny_model()
    model.fit(x, y, epochs=3, batch_size=64, verbose=0,
              callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    before = summary_of(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "continuing them as with resume=True": said
        model.fit(x, y, epochs=3, initial_epoch=3, batch_size=64, verbose=0,
                  callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    after = summary_of(tmp_path)
    assert [r["epoch"] for r in csv.DictReader(open(tmp_path / "logs.csv"))] == ["0", "1", "2"]
    assert after["epochs"] == 3 and after["energy_j"] >= before["energy_j"]
    assert len(after["attempts"]) == 2  # the second fit's few joules are counted too


FULL_DISK = r"""
import csv, json, os, resource, signal, sys, warnings
from pathlib import Path
import keras
sys.path.insert(0, sys.argv[2])
from test_callbacks import tiny_data, tiny_model
from greenscreen import SMICallback

folder = Path(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)


class FullAtEpoch1(keras.callbacks.Callback):
    # Before SMICallback in the list: at epoch 1's end a file may grow to logs.csv's size
    # and a row more, which summary.json (larger) cannot be written within.
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            limit = (folder / "logs.csv").stat().st_size + 600
            assert (folder / "summary.json").stat().st_size > limit
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        else:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


x, y = tiny_data()
with warnings.catch_warnings(record=True) as said:
    warnings.simplefilter("always")
    tiny_model().fit(x, y, epochs=4, batch_size=64, verbose=0, callbacks=[
        FullAtEpoch1(), SMICallback(log_dir=folder, source="nvidia-smi")])
rows = list(csv.DictReader(open(folder / "logs.csv")))
print(json.dumps({"epochs": [r["epoch"] for r in rows], "reasons": [r["reason"] for r in rows],
                  "summary_epochs": json.loads((folder / "summary.json").read_text())["epochs"],
                  "warned": [str(w.message) for w in said if "greenscreen" in str(w.message)]}))
"""


def test_a_summary_json_the_disk_could_not_take_loses_no_row(fake_smi, tmp_path):
    """A full disk as epoch 1 ends: summary.json's write failed first, so epoch 1's row was
    never written, and the fault's text stuck to every later row (review)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).parent
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path / "run"),
                           str(tests)], cwd=tests.parent, env={**os.environ},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["epochs"] == ["0", "1", "2", "3"] and seen["summary_epochs"] == 4
    assert seen["reasons"] == [""] * 4
    assert len(seen["warned"]) == 1 and "summary.json could not be written" in seen["warned"][0]


class EvaluatesAt(keras.callbacks.Callback):
    """A callback of the fit that evaluates the model with the same SMICallback, as a user
    measuring a held-out set's cost does: as the fit begins, after each epoch, or after
    each validation (placed before `smi`, so inside the fit's own validation call)."""

    def __init__(self, smi, hook):
        super().__init__()
        self.smi, self.hook, self.busy = smi, hook, False

    def _evaluate(self, hook):
        if hook == self.hook and not self.busy:
            self.busy = True
            x, y = tiny_data()
            self.model.evaluate(x, y, batch_size=64, verbose=0, callbacks=[self.smi])
            self.busy = False

    def on_train_begin(self, logs=None):
        self._evaluate("train_begin")

    def on_epoch_end(self, epoch, logs=None):
        self._evaluate("epoch_end")

    def on_test_end(self, logs=None):
        self._evaluate("test_end")


def test_an_evaluate_inside_the_fit_with_its_smicallback_leaves_the_fit_measured(
        fake_smi, tmp_path):
    """The evaluate's new callback list looked like the fit had died: the fit's attempt
    was closed after its first epoch ("running (or killed)"), its meter stopped, and the
    running total, which EnergyBudget counts, stood still from then on (review)."""
    from greenscreen import EnergyBudget

    x, y = tiny_data()
    smi = SMICallback(log_dir=tmp_path, source="nvidia-smi", interval=0.05)
    budget = EnergyBudget(max_joules=1e9)
    history = tiny_model().fit(x, y, epochs=4, batch_size=64, verbose=0, callbacks=[
        smi, EvaluatesAt(smi, "epoch_end"), budget])
    totals = history.history["energy_total_j"]
    assert all(b > a for a, b in zip(totals, totals[1:])), totals
    summary = summary_of(tmp_path)
    assert summary["epochs"] == 4 and len(summary["attempts"]) == 1
    assert summary["attempts"][0]["ended"] != "running (or killed)"
    assert summary["inference"]["evaluate"]["calls"] == 4
    assert summary["energy_j"] >= totals[-1]  # measured on to the fit's end, never less


def test_a_resumed_fit_keeps_the_evaluate_and_predict_calls_recorded_before(fake_smi,
                                                                          tmp_path):
    """summary.json's `inference` (each phase's calls and energy) was rewritten from the
    resumed fit's own calls alone: the earlier validation, evaluate and predict were gone
    (review)."""
    x, y = tiny_data()
    model = tiny_model()

    def smi():
        return SMICallback(log_dir=tmp_path, source="nvidia-smi", interval=0.05)

    model.fit(x, y, epochs=2, batch_size=64, verbose=0, validation_data=(x, y),
              callbacks=[smi()])
    model.evaluate(x, y, batch_size=64, verbose=0, callbacks=[smi()])
    model.predict(x, batch_size=64, verbose=0, callbacks=[smi()])
    before = summary_of(tmp_path)["inference"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "continuing them as with resume=True"
        model.fit(x, y, epochs=4, initial_epoch=2, batch_size=64, verbose=0,
                  validation_data=(x, y), callbacks=[smi()])
    after = summary_of(tmp_path)["inference"]
    assert [after[p]["calls"] for p in ("validation", "evaluate", "predict")] == [4, 1, 1]
    for phase in ("evaluate", "predict"):
        assert after[phase]["energy_j"] == pytest.approx(before[phase]["energy_j"])
    assert after["validation"]["energy_j"] > before["validation"]["energy_j"]


def test_a_fit_interrupted_and_never_closed_stops_its_meter_when_log_dir_is_taken_over(
        fake_smi, tmp_path):
    """Ctrl-C in a notebook, no close(), then a new SMICallback on the same log_dir: the
    first callback's nvidia-smi readers ran on until the process exited, one more set per
    interrupted fit (review)."""
    x, y = tiny_data()
    model = tiny_model()
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[
                SMICallback(log_dir=tmp_path, source="nvidia-smi"),
                RaisesAt(KeyboardInterrupt())])
    model.fit(x, y, epochs=1, batch_size=64, verbose=0,
              callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    assert processes_running(fake_smi.exe) == []


def test_a_callback_that_fit_before_adds_its_evaluate_to_a_later_fit_s_summary(fake_smi,
                                                                               tmp_path):
    """A fits, then B fits again in the same log_dir, then A evaluates: A wrote its own
    older fit's figures over B's summary.json, which no longer matched logs.csv (review)."""
    x, y = tiny_data()
    model = tiny_model()
    a, b = (SMICallback(log_dir=tmp_path, source="nvidia-smi") for _ in range(2))
    model.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[a])
    model.fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[b])
    fitted = summary_of(tmp_path)
    model.evaluate(x, y, batch_size=64, verbose=0, callbacks=[a])
    after = summary_of(tmp_path)
    assert after["epochs"] == 3 and after["energy_j"] == fitted["energy_j"]
    assert after["inference"]["evaluate"]["calls"] == 1
    assert len(list(csv.DictReader(open(tmp_path / "logs.csv")))) == 3
    model.evaluate(x, y, batch_size=64, verbose=0, callbacks=[b])  # B's own: as before
    assert summary_of(tmp_path)["inference"]["evaluate"]["calls"] == 2


class StopsAtBegin(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        raise KeyboardInterrupt  # a SIGTERM in the fit's set-up, before its first epoch


def test_calls_and_stops_before_a_resumed_fit_s_first_epoch_keep_the_earlier_attempts(
        fake_smi, tmp_path):
    """An evaluate inside the fit before its first epoch, and a stop there followed by
    close() (the pipeline's way), wrote summary.json before the fit had decided to resume:
    the earlier attempt's joules were gone for good, and the evaluate counted twice
    (review)."""
    x, y = tiny_data()
    model = tiny_model()

    def smi():
        return SMICallback(log_dir=tmp_path, source="nvidia-smi", resume=True)

    model.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[smi()])
    first = summary_of(tmp_path)["attempts"][0]
    stopped = smi()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=4, initial_epoch=2, batch_size=64, verbose=0,
                  callbacks=[stopped, StopsAtBegin()])
    stopped.close()
    assert summary_of(tmp_path)["attempts"][0] == first
    evaluating = smi()
    model.fit(x, y, epochs=4, initial_epoch=2, batch_size=64, verbose=0,
              callbacks=[evaluating, EvaluatesAt(evaluating, "train_begin")])
    summary = summary_of(tmp_path)
    assert summary["attempts"][0] == first and len(summary["attempts"]) == 3
    assert summary["epochs"] == 4 and summary["inference"]["evaluate"]["calls"] == 1


def test_an_evaluate_inside_the_fit_s_validation_is_measured_apart(fake_smi, tmp_path):
    """A callback before SMICallback evaluates a test set after each validation: the
    validation's own end closed the evaluate's window again, counting no validation and
    twice the evaluations, and every row's val_energy_j was NaN (review)."""
    x, y = tiny_data()
    smi = SMICallback(log_dir=tmp_path, source="nvidia-smi", interval=0.05)
    tiny_model().fit(x, y, epochs=2, batch_size=64, verbose=0, validation_data=(x, y),
                     callbacks=[EvaluatesAt(smi, "test_end"), smi])
    inference = summary_of(tmp_path)["inference"]
    assert inference["validation"]["calls"] == 2 and inference["evaluate"]["calls"] == 2
    rows = list(csv.DictReader(open(tmp_path / "logs.csv")))
    assert all(float(r["val_energy_j"]) > 0 for r in rows)


def test_a_fit_with_no_epoch_left_and_an_unreadable_logs_csv_resumes_after_its_attempts(
        fake_smi, tmp_path):
    x, y = tiny_data()
    model = tiny_model()
    model.fit(x, y, epochs=3, batch_size=64, verbose=0,
              callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    (tmp_path / "logs.csv").write_bytes(b"\0" * 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # logs.csv set aside: said
        model.fit(x, y, epochs=3, initial_epoch=3, batch_size=64, verbose=0,
                  callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    summary = summary_of(tmp_path)
    assert summary["epochs"] == 3 and len(summary["attempts"]) == 2


@pytest.mark.backends("tensorflow", "jax", "torch")
def test_a_logs_csv_cut_short_resumes_with_its_missing_epochs_said_lost(fake_smi, tmp_path):
    """A logs.csv that still parses but lost rows (cut mid-file, a header alone) was
    resumed without them: epochs 0 and 2 only, no word, no `lost:` row."""
    x, y = tiny_data()
    model = tiny_model()
    model.fit(x, y, epochs=3, batch_size=64, verbose=0,
              callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    lines = (tmp_path / "logs.csv").read_text().splitlines()
    (tmp_path / "logs.csv").write_text("\n".join(lines[:2] + lines[3:]) + "\n")  # no epoch 1
    with pytest.warns(RuntimeWarning, match=r"had no row for epoch\(s\) 1 of the 3 before this "
                                         r"fit; they are recorded as lost"):
        model.fit(x, y, epochs=5, initial_epoch=3, batch_size=64, verbose=0,
                  callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    rows = list(csv.DictReader(open(tmp_path / "logs.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]
    assert rows[1]["reason"].startswith("lost: logs.csv had no row for it when this fit "
                                        "resumed") and rows[1]["energy_j"] == "nan"
    assert float(rows[0]["energy_j"]) > 0 and not rows[3]["reason"]
    assert len(summary_of(tmp_path)["attempts"]) == 2  # the energy of both fits, kept


class CtrlCAt(keras.callbacks.Callback):
    """Slow steps (0.2 s), and Ctrl-C after `batch` of `epoch`; when each batch's end
    began (`ends`: after SMICallback's hook of that batch) and when it raised."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.raised_at, self.ends = (epoch, batch), None, []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.time())
        time.sleep(0.2)
        if (self.epoch, batch) == self.at:
            self.raised_at = time.time()
            raise KeyboardInterrupt


@pytest.mark.parametrize("again_with", ["the same callback", "a new callback"])
def test_fit_again_after_ctrl_c_without_close_keeps_the_attempt_whole(fake_smi, tmp_path,
                                                                     again_with):
    """A notebook's Ctrl-C, then the cell run again, without close(): the first attempt
    stayed "running (or killed)" with its energy as of its last summary write (its last
    epoch's end here; up to 30 s short), for good. Now it ends at its last batch: not at
    the next fit's start either, the idle time between was not its training."""
    x, y = tiny_data()
    model, smi = tiny_model(), SMICallback(log_dir=tmp_path, source="nvidia-smi")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    stop = CtrlCAt(epoch=1, batch=2)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[smi, stop, backup])
    time.sleep(1.0)  # the user reads the traceback
    again = smi if again_with == "the same callback" else SMICallback(
        log_dir=tmp_path, source="nvidia-smi")
    refit_at = time.time()
    model.fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[again, backup])
    first, second = summary_of(tmp_path)["attempts"]
    assert first["ended"] == "interrupted" and second["ended"] == "completed"
    # Its last batch's end: after the batch before it ended (a write at epoch 0's end, as
    # before, was earlier still), and before Ctrl-C and the next fit (order, no timing)
    assert stop.ends[-2] < first["t_end"] <= stop.ends[-1] <= stop.raised_at < refit_at
    assert first["energy_j"] > 0 and second["first_epoch"] == 1
    assert summary_of(tmp_path)["energy_j"] == pytest.approx(
        first["energy_j"] + second["energy_j"])


def test_fit_again_after_ctrl_c_in_the_first_epoch_keeps_the_dead_attempt(fake_smi, tmp_path):
    """Ctrl-C in epoch 0 (no logs.csv row yet), then the same fit again from epoch 0: the
    dead attempt, just closed and written, was overwritten without a word (review)."""
    x, y = tiny_data()
    model, smi = tiny_model(), SMICallback(log_dir=tmp_path, source="nvidia-smi")
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[smi, CtrlCAt(0, 1)])
    with pytest.warns(RuntimeWarning, match=r"holds an earlier fit's record \(0 epoch row"):
        model.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[smi])
    kept, = tmp_path.glob("summary.json.replaced-*")
    dead, = json.loads(kept.read_text())["attempts"]
    assert dead["ended"] == "interrupted" and dead["energy_j"] > 0
    assert len(summary_of(tmp_path)["attempts"]) == 1

