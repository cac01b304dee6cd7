"""How SMICallback closes a fit that an exception ended before `on_train_end`: by your
`close()`, or, where you did not call it, by its next call or by the next fit on its
log_dir (`_close_dead`)."""

from __future__ import annotations


class Closing:
    """SMICallback's `close()`, and the same for a fit found dead."""

    def close(self) -> None:
        """Ends this fit's measurement where an exception (Ctrl-C, a SIGTERM raised as
        KeyboardInterrupt) ended `fit` before `on_train_end`: writes summary.json with the
        energy spent so far, this attempt marked "interrupted", and stops the
        meter this callback started. After an `evaluate` or `predict` that an exception
        ended, it lets go of `log_dir` and stops the meter. Nothing happens after a fit or
        call that ended normally.

        Example:

        ```python
        smi = SMICallback(log_dir="run-1")
        try:
            model.fit(x, y, epochs=50, callbacks=[smi])
        except KeyboardInterrupt:
            smi.close()  # the interrupted attempt's joules stay counted
            raise
        ```
        """
        self._close()

    def _close_dead(self) -> None:
        """Closes a fit that an exception ended without `close()`, found by this
        callback's next fit, evaluate or predict, or by another callback taking over its
        log_dir: its attempt "interrupted", ended at its last batch or epoch (the time
        since, until this call, was not its training: a notebook's minutes at idle power
        were charged to it), so that the next fit reads it whole, not as it stood at the
        last heartbeat (up to 30 s short) and "running (or killed)"."""
        try:
            self._close(at=self._last_seen)
        except Exception as exc:  # never at the cost of the call that found it
            self._warn_once("dead", "the fit that raised before this call could not be "
                            f"recorded: {type(exc).__name__}: {exc}")

    def _close(self, at: float | None = None) -> None:
        if not self._in_fit:  # an interrupted evaluate or predict: no attempt to record
            self._release_lock()
            self._stop_meter()
            return
        self._in_fit, self._killed = False, True
        try:  # its figures as they stand now, whatever meter a later call starts
            self._settle_files()  # stopped before its first epoch (a SIGTERM in set-up)
            window = self._attempt_window(at)
            self._train = window.close() if window is not None else None
            self._write_summary()
        finally:
            self._release_lock()
            self._stop_meter()
