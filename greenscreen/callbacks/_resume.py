"""How SMICallback continues an interrupted fit's files in its `log_dir`."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

from ._runlog import CsvRunLog, earlier_attempts, read_summary, set_aside
from ._summary import add_inference

NAN = float("nan")


class ResumeFiles:
    """SMICallback's decision, at a fit's first epoch, to continue `logs.csv` and the
    attempts of `summary.json` in `log_dir`, or to start afresh (see its `resume`)."""

    def _add_earlier_inference(self) -> None:
        """The evaluate, predict and validation calls summary.json recorded before this fit
        (an earlier attempt's, or calls made since), kept and added to: a resumed fit
        that rewrites summary.json dropped them."""
        earlier = (read_summary(self.log_dir) or {}).get("inference")
        for phase, stats in (earlier.items() if isinstance(earlier, dict) else ()):
            mine = self.inference.get(phase)
            if mine is None or not isinstance(stats, dict):
                continue
            numbers = {key: (value if isinstance(value, (int, float)) else NAN)
                       for key, value in stats.items() if key in mine and key != "source"}
            mine.update(add_inference(mine, {**numbers, "source": stats.get("source"),
                                             "energy_reason": stats.get("energy_reason")}))

    def _recorded_end(self) -> int:
        """Where a fit with no epoch left to train stands: after the last epoch logs.csv
        records (Keras tells callbacks neither a fit's `initial_epoch` nor that it had
        nothing to do), so that such a fit continues the files rather than starting
        afresh and deleting them; 0 without a readable logs.csv."""
        if not self._writes:
            return 0
        log = CsvRunLog(Path(self.log_dir) / "logs.csv")
        try:
            log.load()
            return log.end()
        except Exception:  # unreadable (`_continue_from` sets it aside and says so): where
            try:  # summary.json's attempts say how far they trained, resume after them
                ends = [a["first_epoch"] + a["epochs"] for a in earlier_attempts(self.log_dir)
                        if isinstance(a.get("first_epoch"), int)
                        and isinstance(a.get("epochs"), int)]
            except RuntimeError:
                ends = []
            return max(ends, default=0)

    def _earlier_record(self, log: CsvRunLog) -> bool:
        """Whether log_dir holds an earlier fit's record: epoch rows, or a summary.json
        with an attempt (one that died in its first epoch has no row) or an evaluate's or
        predict's energy; one that cannot be read counts (kept, never overwritten)."""
        if log.rows:
            return True
        try:
            summary = read_summary(self.log_dir)
        except RuntimeError:
            return True
        if not summary:
            return False
        calls = [v.get("calls") for v in (summary.get("inference") or {}).values()
                 if isinstance(v, dict)]
        return bool(summary.get("attempts")) or any(isinstance(c, int) and c > 0
                                                    for c in calls)

    def _keep_replaced(self, log: CsvRunLog) -> None:
        """A fit from epoch 0 (resume and append left at their defaults) into a log_dir
        that holds an earlier fit's record (`_earlier_record`): its logs.csv and
        summary.json are kept beside, renamed, with a warning. They were deleted without a
        word: Keras's own fit, unfreeze, fit again recipe, or a script run again after
        EnergyBudget stopped it, lost the first fit's energy record."""
        try:
            spent = (read_summary(self.log_dir) or {}).get("energy_j")
        except RuntimeError:
            spent = None
        rows = len(log.rows)  # before set_aside empties them
        kept = [log.set_aside("replaced").name] if log.path.exists() else []
        summary = Path(self.log_dir) / "summary.json"
        if summary.exists():
            kept.append(set_aside(summary, "replaced").name)
        joules = f", {spent:.1f} J" if isinstance(spent, (int, float)) and math.isfinite(
            spent) else ""
        self._warn_once("replaced", f"{self.log_dir} holds an earlier fit's record "
                        f"({rows} epoch row(s){joules}); this fit starts at epoch 0 "
                        f"and records afresh, keeping it as {' and '.join(kept)} "
                        "(append=True totals the fits in one record; resume=False starts "
                        "afresh without keeping it)")

    def _continue_from(self, epoch: int) -> None:
        """Decides, at the fit's first epoch, whether it continues the files in `log_dir`:
        with resume=True, or (resume=None) when it starts past epoch 0 and `logs.csv`
        holds earlier epochs. Loads them and the earlier attempts, or starts afresh."""
        self._resuming = bool(self.resume)
        if not self._writes:  # no log_dir, or another fit writes there
            return
        log = self._run_log = CsvRunLog(Path(self.log_dir) / "logs.csv")
        existed = log.path.exists()
        if existed and (self.append or self.resume is not False):
            try:
                log.load()
            except Exception as exc:  # not a logs.csv: kept aside, never mixed into this one
                self._lost = f"{log.path.name} could not be read ({exc}); it is kept as " \
                             f"{log.set_aside().name}"
                self._warn_once("resume", f"{self._lost}; " + (
                    "the earlier epochs' energy is recorded as lost" if epoch > 0 else
                    "this fit starts at epoch 0 and records afresh"))
        auto = self.resume is None and not self.append and epoch > 0 and (
            self._lost or log.has_epochs_before(epoch))
        if auto:
            self._resuming = True
            warnings.warn(
                f"greenscreen: this fit starts at epoch {epoch} and {log.path} holds earlier "
                "epochs: continuing them as with resume=True (pass resume=False to start "
                "afresh)", UserWarning, stacklevel=3)
        if not (self.append or self._resuming):
            if self.resume is None and self._earlier_record(log):  # chosen by no one:
                self._keep_replaced(log)  # kept, and said
            log.rows, log.columns = [], []
            log.path.unlink(missing_ok=True)
        if self._resuming or (self.append and log.rows):
            # logs.csv keeps the earlier rows, so summary.json keeps their attempts: with
            # append alone its epochs counted every row and its energy this fit's alone.
            try:
                self._earlier = earlier_attempts(self.log_dir)
                self._add_earlier_inference()
            except RuntimeError as exc:  # never overwrite what could not be read
                self._no_summary = f"{exc}; summary.json is left as it is"
                self._warn_once("resume", self._no_summary)
        if self._resuming:
            # Epochs from here on are trained again: their old rows go (their
            # energy stays counted in the earlier attempt's total).
            log.drop_from_epoch(epoch)
            if self._lost and epoch > 0:  # their rows say so; unknown attempts count NaN
                log.mark_lost(epoch, self._lost)
                self._earlier = self._earlier or [{
                    "t_start": NAN, "t_end": NAN, "duration_s": NAN, "energy_j": NAN,
                    "first_epoch": 0, "epochs": epoch, "ended": f"lost: {self._lost}"}]
            elif existed:  # a file cut short or edited since: its gaps say so, not silence
                missing = log.mark_missing(epoch, "logs.csv had no row for it when this fit "
                                                  "resumed (cut short or edited since)")
                if missing:
                    self._warn_once("resume", f"{log.path} had no row for epoch(s) "
                                    f"{', '.join(map(str, missing))} of the {epoch} before "
                                    "this fit; they are recorded as lost (their energy "
                                    "stays in summary.json's earlier attempts)")
