"""A run process's stop request: SIGTERM (Slurm's time limit, the sweep stopping) or
SIGINT ends the run as Ctrl-C does, with KeyboardInterrupt where the run is.

The signal is also remembered, in `requested`. Python raises the KeyboardInterrupt in
whatever code runs when the handler fires; where that is a finaliser or a library's bare
`except`, the interrupt is swallowed, and since the handler ignores any later signal the
run would otherwise train on to its end. `stop_callbacks.StopOnSignal` reads `requested` at
each epoch's end (after the epoch's checkpoint) and raises again.

An epoch's end is held (`hold` ... `release`): from the first callback's `on_epoch_end`
(before SMICallback writes the epoch's logs.csv row) until the epoch's checkpoint names
it (`latest.json`), a signal is remembered and not raised; `release` raises it then. A
stop that came between the row and the checkpoint would leave a row for an epoch the
resume trains again (its row overwritten, the attempts overlapping). A SIGKILL cannot be
held: the epoch is trained again on resume and its row replaced, while summary.json keeps
every attempt's joules (the killed attempt's, that epoch's among them). No keras import
here: the run process installs the handler before it settles JAX's 64-bit mode.
"""

from __future__ import annotations

import signal

requested: list[str] = []  # the signal that asked this process to stop, once one came
_held = False  # an epoch's end is being recorded: a signal waits for `release`


def install() -> None:
    """SIGTERM and SIGINT interrupt this process (the main thread) from now on."""
    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def handle(signum: int, frame) -> None:
    """Remembers the signal, ignores any later one while this one is handled, and raises
    KeyboardInterrupt naming it, unless an epoch's end is held (`release` raises it)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    name = signal.Signals(signum).name
    requested.append(name)
    if not _held:
        raise KeyboardInterrupt(name)


def hold() -> None:
    """From now until `release` (or `unhold`), a stop request is remembered, not raised."""
    global _held
    _held = True


def unhold() -> None:
    """Ends a hold without raising (the fit ended with an exception of its own)."""
    global _held
    _held = False


def release() -> None:
    """Ends the hold; raises KeyboardInterrupt where a stop was requested (during the hold,
    or earlier and swallowed where it was raised)."""
    unhold()
    if requested:  # after unhold: a signal from here on raises in its handler itself
        raise KeyboardInterrupt(requested[0])
