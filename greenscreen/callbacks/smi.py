"""SMICallback: measured energy per epoch in Keras logs, logs.csv and summary.json."""

from __future__ import annotations

import functools
import math
import time
import warnings
from pathlib import Path

import keras

from ..carbon import carbon_intensity as resolve_intensity
from ..fileio import atomic_write_json
from ..meters import EnergyMeter, PowerSource
from ..provenance import is_measured
from ._arguments import backup_deletes, check_arguments
from ._closing import Closing
from ._copy import CopiedAsNew
from ._inference import InferenceCalls
from ._job import job_metadata
from ._lock import beside, inside_its_fit, take
from ._metering import MeterLifecycle
from ._resume import ResumeFiles
from ._runlog import CsvRunLog, epoch_row
from ._summary import attempt_record, document, stop_record
from ._windows import estimated_flag, log_fields, running_total

NAN = float("nan")
HEARTBEAT_S = 30.0  # longest gap between two summary.json writes during a fit


def _guarded(hook):
    """A fault in measurement code warns once and is recorded; training goes on."""

    @functools.wraps(hook)
    def wrapper(self, *args, **kwargs):
        try:
            return hook(self, *args, **kwargs)
        except Exception as exc:
            self._reason = f"{hook.__name__} failed: {type(exc).__name__}: {exc}"
            self._warn_once("internal", self._reason)

    return wrapper


class SMICallback(CopiedAsNew, ResumeFiles, InferenceCalls, MeterLifecycle, Closing,
                  keras.callbacks.Callback):
    """Measures the energy of every epoch and writes it into Keras `logs`.

    Each epoch's logs gain `energy_j`, `power_w` (mean), `power_peak_w`,
    `gpu_temp_c`, `gpu_util_pct`, `epoch_s` and `energy_estimated` (1 where `energy_j` is,
    in whole or in part, an estimate, 0 where it is measured), and for each measured
    component its energy: `energy_gpu_j`, `energy_cpu_j` (CPU packages), `energy_dram_j`;
    `energy_j` is their sum. Each has an `_err_j` twin (`energy_err_j`, `energy_gpu_err_j`,
    ...): the half-width of its 95 % sampling and integration interval (NaN for an
    estimate; the sensor's own accuracy is apart, in `summary.json`). They also gain the
    running total, `energy_total_j`: `summary.json`'s `energy_j` at that epoch's end
    (every attempt of a resumed fit, and the time between epochs), with its own flag
    `energy_total_estimated`; `EnergyBudget` and `EnergyForecast` count it. So `History`,
    `CSVLogger`, `TensorBoard`, MLflow's autologging and the progress bar show
    them. Place it before those callbacks
    in the list. It also writes `logs.csv` (one row per epoch, flushed per row,
    with each component's provenance and, for each it could not measure, why)
    and `summary.json` (totals and their split, what they cover, devices, CO2,
    provenance, sampler faults, the job ids, and the energy of `evaluate` and
    `predict` calls) to `log_dir`.

    Measurement never stops training: if the meter fails, it warns once and
    writes NaN with the reason.

    Args:
        log_dir: Folder for `logs.csv` and `summary.json`; None writes no file. One fit
            writes it at a time (it locks `greenscreen.lock` there): one that finds
            another writing there warns, and its energy goes into its Keras logs only.
        interval: Seconds between power samples (default 0.1, i.e. 10 Hz; at least
            0.001).
        source: "auto" (every component it can read: GPUs, CPU packages and
            DRAM), one of "nvidia-smi", "nvml", "rapl", "estimate", a list of
            them (e.g. `["nvml", "rapl"]`) or a `PowerSource` (see
            `EnergyMeter`); "estimate", or an estimating `PowerSource`, only
            alone. `source` in the CSV and summary says what was read
            (e.g. "measured:nvml-counter + measured:rapl;attributed:cpu-time-share"
            or "estimated:cpu-time"); the summary's names every attempt's.
        gpus: GPU indices or UUIDs to measure; default `CUDA_VISIBLE_DEVICES`.
        per_batch: Also put the latest total power (`power_w`) in batch logs, with
            `energy_estimated` as in an epoch's (1 where it is, in whole or in
            part, an estimate).
        carbon_intensity: g CO2/kWh of your grid; overrides `country`.
        country: ISO country code for the offline intensity table.
        pue: Data-centre power usage effectiveness applied to CO2 (default 1).
        meter: An `EnergyMeter` to share: a running one is not stopped here; one given
            stopped is started for each fit or call and stopped at its end.
        append: Append to an existing `logs.csv` instead of replacing it; `summary.json`
            then keeps the earlier fits' attempts and totals them too.
        resume: Continue an interrupted fit's `logs.csv` and `summary.json` in
            `log_dir` (as `keras.callbacks.BackupAndRestore` resumes one): rows
            of the epochs this fit trains again are replaced, so no epoch is
            missing or doubled, and `summary.json` lists every attempt, each
            with its `source`, and totals the energy of all of them, since all
            of it was spent; where their sources differ, its `source` names each
            (e.g. "estimated:cpu-time + measured:nvidia-smi") and
            `energy_estimated` is true where any is an estimate.
            None (the default): resume when the fit starts at an epoch > 0 and
            `logs.csv` holds earlier epochs (a `BackupAndRestore` resume or
            `initial_epoch=`), saying so once; otherwise start afresh, the
            earlier fit's files kept beside as `logs.csv.replaced-<time>` and
            `summary.json.replaced-<time>` and said. True: always continue;
            False: always start afresh (nothing kept).
            While training, `summary.json` is rewritten at every epoch end and
            at least every 30 s, so a killed attempt loses at most that much.
        first_sample_timeout: Seconds to wait, when the meter starts, for its
            first reading, so short first epochs are measured too (default 5).
        attribution: "process" (default) or "device": with other processes on
            the GPU, charge this training its share, or the whole device; for CPU
            and DRAM, its process tree's share of the node's busy CPU time, or
            the whole packages (see `EnergyMeter`). Rows record `shared_with`,
            the other processes on the GPUs.

    Example:

    ```python
    from greenscreen import SMICallback

    model.fit(x, y, epochs=5, callbacks=[SMICallback(log_dir="run-1")])
    # Epoch 1/5 ... loss: 0.52 - energy_j: 812.4 - energy_gpu_j: 701.9 - energy_cpu_j: 96.3
    #   - energy_dram_j: 14.2 - power_w: 203.1 - ...
    ```
    """

    def __init__(
        self,
        log_dir: "str | Path | None" = "greenscreen_logs",
        interval: float = 0.1,
        source: "str | PowerSource | list[str | PowerSource]" = "auto",
        gpus: "list[int | str] | None" = None,
        per_batch: bool = False,
        carbon_intensity: float | None = None,
        country: str | None = None,
        pue: float = 1.0,
        meter: EnergyMeter | None = None,
        append: bool = False,
        first_sample_timeout: float = 5.0,
        resume: bool | None = None,
        attribution: str = "process",
    ) -> None:
        super().__init__()
        # Every argument is checked now, as Keras callbacks do: the meter's by the meter's
        # own rules, carbon_intensity, country and pue when `_reset` resolves them.
        check_arguments(log_dir, meter, first_sample_timeout, resume, per_batch=per_batch,
                        append=append)
        EnergyMeter.check_arguments(source, interval, gpus, attribution)
        self.log_dir = log_dir
        self.interval = interval
        self.source = source
        self.gpus = gpus
        self.per_batch = per_batch
        self.carbon_intensity = carbon_intensity
        self.country = country
        self.pue = pue
        self.meter = meter
        self.append = append
        self.resume = resume
        self.first_sample_timeout = first_sample_timeout
        self.attribution = attribution
        self._lock = None
        # The meter this callback builds, kept from call to call: it probes its sources at
        # its first start only, not at every evaluate or predict (a hung nvidia-smi: 2 s).
        self._own_meter: EnergyMeter | None = None
        self._reset()

    # -- state -------------------------------------------------------------
    def _reset(self) -> None:
        """Per-fit state: set at construction, so evaluate/predict before any fit find it,
        and again at every `on_train_begin`."""
        self.intensity = resolve_intensity(self.carbon_intensity, self.country, self.pue)
        self._release_lock()
        if getattr(self, "_owns_meter", False):  # left running by a fit that raised and
            self._stop_meter()  # was not closed: its nvidia-smi and threads would live on
        self._writes = self.log_dir is not None  # False where another fit writes log_dir
        self._meter: EnergyMeter | None = None
        self._owns_meter = False
        self._reason: str | None = None
        self._start_failed: str | None = None  # why the meter could not start: once a fit
        self._warned: set[tuple[str, str]] = set()
        self._in_fit = self._killed = False  # killed: closed by close(), not on_train_end
        self._last_seen = time.time()  # the fit's last hook: where a dead fit's attempt ends
        self._stop: dict = {}  # how a fit that ended normally ended (`stop_record`)
        self._new_call = False  # set_model was the last hook: a new fit/evaluate/predict
        self._train = self._epoch = None
        self._calls: list = []  # (window, phase, figures before) of each call in progress
        self._epochs_done = 0
        self._val_energy = NAN
        self.inference = {k: {"calls": 0, "energy_j": 0.0, "duration_s": 0.0, "batches": 0,
                              "source": None}
                          for k in ("validation", "evaluate", "predict")}
        self._run_log: CsvRunLog | None = None
        self.summary: dict = {}
        self._earlier: list[dict] = []  # attempts of an interrupted fit this one resumes
        self._first_epoch: int | None = None
        self._resuming = False  # this fit continues an earlier one's files
        self._last_heartbeat = time.monotonic()
        self._no_summary: str | None = None
        self._lost: str | None = None  # why the earlier epochs' rows are lost
        self._job: dict = {}

    def energy_so_far(self) -> dict | None:
        """At a fit's first epoch, what it has spent before it (the earlier attempts of a
        fit it resumes, or earlier fits it appends to): `energy_total_j` and
        `energy_total_estimated` as the epoch's logs will carry them, and `covers`. None
        where there are none, or before the fit's first epoch began."""
        if not self._in_fit or self._first_epoch is None or not self._earlier:
            return None
        summary = self._summarise()
        parts = summary.get("components", {})
        # The components measured in every attempt: `covers` holds the estimated ones too,
        # and the budget's words called each one in it measured
        return {**running_total(summary, known=self._no_summary is None),
                "covers": [c for c in summary.get("covers", [])
                           if is_measured((parts.get(c) or {}).get("source"))]}

    def _warn_once(self, key: str, message: str) -> None:
        """Warns once per distinct fault: the same message again is silent, another is not."""
        if (key, message) not in self._warned:
            self._warned.add((key, message))
            warnings.warn(f"greenscreen: {message}", RuntimeWarning, stacklevel=3)

    def _take_lock(self) -> None:
        """Becomes log_dir's one writer; where another fit writes there, writes nothing."""
        self._release_lock()  # its own, still held where an interrupted call was not closed
        self._writes = self.log_dir is not None
        if self._writes:
            self._lock, busy = take(self.log_dir, self)
            if busy:
                self._lost_lock()
                self._warn_once("lock", f"{self.log_dir}: {busy}, so this fit's energy "
                                "goes into its Keras logs only, and no logs.csv or "
                                "summary.json is written there (give each fit its own log_dir)")

    def _lost_lock(self) -> None:
        """Another callback took log_dir over from this one's fit, which ended without
        `on_train_end` or `close()` (Ctrl-C in a notebook): its meter stops too, instead of
        sampling until the process exits."""
        self._writes = False
        self._in_fit = False
        self._stop_meter()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- fit ---------------------------------------------------------------
    @_guarded
    def on_train_begin(self, logs=None):
        # Whether this fit continues the files in log_dir is decided at its first epoch:
        # BackupAndRestore sets the epoch to resume from in its own on_train_begin.
        if self._in_fit and not inside_its_fit(self):  # Ctrl-C, then fit again
            self._close_dead()
        self._reset()
        self._job = job_metadata()
        self._in_fit = True
        self._take_lock()
        self._start_meter()
        self._train = self._open("train")
        deleted = backup_deletes(self.log_dir, beside(self))
        if deleted:
            self._warn_once("backup", deleted)

    @_guarded
    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch is None:
            self._first_epoch = epoch
            self._continue_from(epoch)
        self._new_call = False
        self._val_energy = NAN
        self._last_seen = time.time()
        self._epoch = self._open(f"epoch-{epoch}")

    @_guarded
    def on_epoch_end(self, epoch, logs=None):
        if self._epoch is None:
            return
        window = self._epoch.close()
        self._last_seen = window.t_end
        fields = log_fields(window)
        if math.isnan(fields["energy_j"]) and self._meter is not None:
            reason = window.reason or self._reason or "no measurement"
            self._warn_once("nan", f"epoch energy unavailable: {reason}")
        if logs is not None:
            logs.update(fields)
        self._epochs_done += 1
        # The durable totals first, then the row: a stop between the two (a SIGTERM raises
        # where the code is) keeps the energy, and the epoch is trained again without its
        # row. `epochs` counts that row, so a fit that fails in a later epoch (no
        # on_train_end) leaves summary.json agreeing with logs.csv (only a stop between
        # the two writes leaves it one ahead).
        self._write_summary(row_pending=self._run_log is not None, t_end=window.t_end)
        fields.update(running_total(self.summary, known=self._no_summary is None))
        if logs is not None:  # for EnergyBudget and EnergyForecast: what summary.json says
            logs.update(fields)
        if self._run_log is not None:
            self._run_log.append(epoch_row(
                epoch, window, logs or fields, val_energy_j=self._val_energy,
                reason=window.reason or self._reason or "", attempt=len(self._earlier) + 1))

    @_guarded
    def on_train_batch_end(self, batch, logs=None):
        self._new_call = False
        self._last_seen = time.time()
        if self.per_batch and logs is not None:
            logs["power_w"] = self._meter.latest()["power_w"] if self._meter else NAN
            logs["energy_estimated"] = estimated_flag(self._meter.source if self._meter
                                                      else "")
        if self.log_dir is not None and time.monotonic() - self._last_heartbeat > HEARTBEAT_S:
            self._write_summary()

    def _settle_files(self) -> None:
        """Before this fit writes summary.json without having begun an epoch (no epoch
        left to train, or stopped before its first): decides, as its first epoch would
        have, whether it continues log_dir's files, so that it never writes over the
        earlier attempts it would have resumed."""
        if self._first_epoch is None:
            start = getattr(self.model, "_initial_epoch", None)  # BackupAndRestore's
            self._first_epoch = start if start is not None else self._recorded_end()
            self._continue_from(self._first_epoch)

    @_guarded
    def on_train_end(self, logs=None):
        self._settle_files()  # a fit with no epoch left to train
        if self._train is not None:
            self._train.close()
        self._in_fit = False
        self._stop = stop_record(self.model, self.params, self._first_epoch,
                                 [c for c in beside(self) if c is not self])
        self._write_summary()
        self._release_lock()
        self._stop_meter()

    # -- evaluate / predict ------------------------------------------------
    @_guarded
    def on_test_begin(self, logs=None):
        nested = self._close_dead_fit()  # an evaluate a callback of the running fit calls
        self._begin_inference("validation" if self._in_fit and not nested else "evaluate")

    @_guarded
    def on_test_batch_end(self, batch, logs=None):
        self._count_batch()

    @_guarded
    def on_test_end(self, logs=None):
        self._end_inference()

    @_guarded
    def on_predict_begin(self, logs=None):
        self._close_dead_fit()
        self._begin_inference("predict")

    @_guarded
    def on_predict_batch_end(self, batch, logs=None):
        self._count_batch()

    @_guarded
    def on_predict_end(self, logs=None):
        self._end_inference()

    # -- files -------------------------------------------------------------
    def _write_summary(self, row_pending: bool = False, t_end: float | None = None) -> None:
        self._last_heartbeat = time.monotonic()
        self._save_summary(self._summarise(row_pending, t_end))

    def _save_summary(self, summary: dict) -> None:
        """Keeps `summary` and writes it, where this callback writes log_dir and did not
        leave an unreadable summary.json as it was."""
        self.summary = summary
        if self._writes and self._no_summary is None:
            try:
                atomic_write_json(Path(self.log_dir) / "summary.json", summary)
            except OSError as exc:
                # A full disk: warned once; the epoch's row still goes to logs.csv, the
                # next write tries again, and no later row carries this fault.
                self._warn_once("summary", f"summary.json could not be written ({exc}); "
                                "the next write of it tries again")

    def _attempt_window(self, t_end: float | None = None):
        """This fit's window: closed at the end; while training, its figures to t_end (now)."""
        train = self._train
        if train is None or train.closed or self._meter is None:
            return train
        end = None if t_end is None else max(t_end, train.t_start)  # a clock stepped back
        return self._meter.window("so-far", t_start=train.t_start).close(end)

    def _ended(self) -> str:
        """How this fit's attempt ended, as summary.json says it (`_summary.ENDED`)."""
        if self._killed:
            return "interrupted"  # an exception ended it; close() or a later call closed it
        return "completed" if self._train.closed else "running (or killed)"

    def _summarise(self, row_pending: bool = False, t_end: float | None = None) -> dict:
        window = self._attempt_window(t_end)
        measured = window is not None and window.closed
        attempt = None if self._train is None else attempt_record(  # None: no fit
            window, measured, self._first_epoch, self._epochs_done,
            self._ended(),
            window.source if measured else (self._meter.source if self._meter else "none"))
        if attempt is not None:
            attempt.update(self._stop)
        return document(
            window=window, meter=self._meter, earlier=self._earlier, attempt=attempt,
            interval=self._meter.sample_interval if self._meter else self.interval,
            intensity=self.intensity,
            epochs=len(self._run_log.rows) + row_pending if self._run_log else self._epochs_done,
            inference=self.inference, reason=self._reason, job=self._job or job_metadata())
