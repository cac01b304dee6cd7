"""How SMICallback measures `evaluate` and `predict` calls, and validation inside a fit."""

from __future__ import annotations

from ._lock import inside_its_fit
from ._summary import fits_summary, with_inference


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
        is closed now, as `close()` would (its attempt kept, "running (or killed)"), and
        this call is an evaluate or predict of its own, not that fit's validation.

        Unless the fit is still running around this call (a callback of the fit calls
        `evaluate` with this SMICallback): then it stays open, and True says this call is
        one of its own inside it, measured on the fit's meter."""
        nested = False
        if self._in_fit and self._new_call:
            nested = inside_its_fit(self)
            if not nested:
                self.close()
        self._new_call = False
        return nested

    def _begin_inference(self, phase: str):
        if not self._in_fit:
            self._take_lock()
            self._start_meter()
        self._inference_phase = phase
        self._call_began = dict(self.inference[phase])
        return self._open(phase)

    def _end_inference(self, window) -> None:
        if window is None:
            return
        window.close()
        stats = self.inference[self._inference_phase]
        stats["calls"] += 1
        stats["duration_s"] += window.duration_s
        stats["energy_j"] += window.energy_j
        if self._inference_phase == "validation":
            self._val_energy = window.energy_j
            return
        if self._in_fit:  # a call inside a running fit: its log_dir and meter stay the fit's
            self._write_call_summary(stats)
            return
        try:
            self._write_call_summary(stats)
        finally:  # whatever the write did, log_dir and the meter are let go
            self._release_lock()
            self._stop_meter()

    def _write_call_summary(self, stats: dict) -> None:
        """After an evaluate or predict: this callback's summary, or, where it has not fit
        and a fit wrote log_dir's summary.json, that file with this call's figures added
        to its `inference` (read again now: another callback may have written it since)."""
        fits = fits_summary(self.log_dir) if self._train is None and self._writes else None
        if fits is None:
            self._write_summary()
            return
        call = {key: value - self._call_began.get(key, 0) for key, value in stats.items()}
        self._save_summary(with_inference(fits, self._inference_phase, call))
