"""A run process's stop request: SIGTERM (Slurm's time limit, the sweep stopping) or
SIGINT ends the run as Ctrl-C does, with KeyboardInterrupt where the run is.

The signal is also remembered, in `requested`. Python raises the KeyboardInterrupt in
whatever code runs when the handler fires; where that is a finaliser or a library's bare
`except`, the interrupt is swallowed, and since the handler ignores any later signal the
run would otherwise train on to its end. `training.StopOnSignal` reads `requested` at
each epoch's end (after the epoch's checkpoint) and raises again. No keras import here:
the run process installs the handler before it settles JAX's 64-bit mode.
"""

from __future__ import annotations

import signal

requested: list[str] = []  # the signal that asked this process to stop, once one came


def install() -> None:
    """SIGTERM and SIGINT interrupt this process (the main thread) from now on."""
    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def handle(signum: int, frame) -> None:
    """Remembers the signal, ignores any later one while this one is handled, and raises
    KeyboardInterrupt naming it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    name = signal.Signals(signum).name
    requested.append(name)
    raise KeyboardInterrupt(name)
