"""The energy-aware search (issue 25): what to train next, and when to stop a run.

    propose.py    the next batch of configurations (seeded random start, then Optuna)
    halving.py    successive halving at rungs 1, eta, eta^2, ...: go on, stop or wait
    rungfiles.py  the rung records a run writes to its folder, read by its peers
    front.py      the (objective, energy) Pareto front and its hypervolume
    encoding.py   the sweep's space as Optuna's distributions, and back

Pure functions of recorded results: the run folders are the record of truth, and Optuna
is used only to propose. Importing this package does not import Optuna.
"""
