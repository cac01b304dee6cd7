"""How SMICallback is copied with `copy.deepcopy`: KerasTuner, for one, deep-copies a
search's callbacks for every trial, and a callback that has run holds a lock and a meter's
threads, which cannot be copied."""

from __future__ import annotations

import copy

# What a copy does not take: its model, and what a call in progress holds (the lock on
# log_dir, the meter and its windows, the open logs.csv).
BOUND_TO_A_CALL = {"_model", "_lock", "_meter", "_own_meter", "_train", "_epoch", "_calls",
                   "_run_log"}
# What a copy shares: a meter given as `meter=` and PowerSource instances given as
# `source=` (each samples from its own thread).
SHARED = {"meter", "source"}


class CopiedAsNew:
    """SMICallback's `__deepcopy__`: a copy with the same arguments and `summary`, attached
    to no model and in no call, as if constructed anew."""

    def __deepcopy__(self, memo: dict):
        twin = self.__class__.__new__(self.__class__)
        memo[id(self)] = twin
        for name, value in self.__dict__.items():
            if name not in BOUND_TO_A_CALL:
                setattr(twin, name, value if name in SHARED else copy.deepcopy(value, memo))
        twin._model, twin._lock, twin._owns_meter, twin._own_meter = None, None, False, None
        twin._reset()
        twin.summary = copy.deepcopy(self.summary, memo)
        return twin
