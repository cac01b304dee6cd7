"""How SMICallback measures `evaluate` and `predict` calls, and validation inside a fit."""

from __future__ import annotations

import time

from ._lock import inside_its_fit
from ._summary import add_inference, fits_summary, with_inference


class InferenceCalls:
    """SMICallback's windows around `evaluate`, `predict` and a fit's validation: outside
    a fit each call takes `log_dir`, starts the meter and lets both go when it ends."""

    def set_model(self, model) -> None:
        # Keras sets the model as each fit, evaluate or predict call builds its callbacks;
        # a fit's validation is run with the fit's own, so it sets none (every backend's
        # fit passes its CallbackList to evaluate). on_train_begin, on_epoch_begin,
        # on_train_batch_end, on_test_begin and on_predict_begin clear the note.
        super().set_model(model)
        self._new_call = True

    def _close_dead_fit(self) -> bool:
        """At evaluate's or predict's start: a fit still open, with a new Keras call begun
        since its last epoch or batch, raised before `on_train_end` and was not closed. It
        is closed now, as `close()` would (its attempt kept, "interrupted"), and
        this call is an evaluate or predict of its own, not that fit's validation.

        Unless the fit is still running around this call (a callback of the fit calls
        `evaluate` with this SMICallback): then it stays open, and True says this call is
        one of its own inside it, measured on the fit's meter."""
        nested = False
        if self._in_fit and self._new_call:
            nested = inside_its_fit(self)
            if not nested:
                self._close_dead()
        self._new_call = False
        return nested

    def _begin_inference(self, phase: str) -> None:
        """A call begins: its window, its phase and its phase's figures before it, on a
        stack, since an evaluate a callback calls may run inside the fit's validation."""
        if not self._in_fit:
            self._take_lock()
            self._start_meter()
        self._calls.append((self._open(phase), phase, dict(self.inference[phase])))

    def _count_batch(self) -> None:
        if self._in_fit:  # a fit that dies in its validation ends here, not before it
            self._last_seen = time.time()
        if self._calls:
            self.inference[self._calls[-1][1]]["batches"] += 1

    def _end_inference(self) -> None:
        if not self._calls:
            return
        window, phase, began = self._calls.pop()
        window.close()
        if self._in_fit:
            self._last_seen = window.t_end
        stats = self.inference[phase]
        stats.update(add_inference(stats, {"calls": 1, "duration_s": window.duration_s,
                                           "energy_j": window.energy_j, "batches": 0,
                                           "source": window.source}))
        if phase == "validation":
            self._val_energy = window.energy_j
            return
        if self._in_fit:  # a call inside a running fit: its log_dir and meter stay the fit's
            if self._first_epoch is not None:  # before it the fit has not decided whether
                self._write_call_summary(stats, phase, began)  # it resumes log_dir's files
            return
        try:
            self._write_call_summary(stats, phase, began)
        finally:  # whatever the write did, log_dir and the meter are let go
            self._release_lock()
            self._stop_meter()

    def _write_call_summary(self, stats: dict, phase: str, began: dict) -> None:
        """After an evaluate or predict: this callback's summary, or, where it has not fit
        or another callback has written log_dir's summary.json since it did (a later fit
        there), that file with this call's figures added to its `inference` (read again
        now), so that no callback writes its older figures over a newer fit's."""
        fits = fits_summary(self.log_dir) if self._writes else None
        if fits is not None and self._train is not None \
                and fits.get("written_at") == self.summary.get("written_at"):
            fits = None  # the file is this callback's own: rewritten from what it holds
        if fits is None:
            self._write_summary()
            return
        call = {key: value - began.get(key, 0) for key, value in stats.items()
                if key not in ("source", "energy_reason")}
        call.update(source=stats.get("source"), energy_reason=stats.get("energy_reason"))
        self._save_summary(with_inference(fits, phase, call))
