"""Executors: who trains a sweep's runs. Peers on one interface (`attempt.train_claimed`:
claim a run, train it in its own process, record the attempt, release it).

    local   threads on this machine (`local.run_sweep`)
    slurm   one job array, then a dependent analysis + final + report job (`slurm.submit`)
    ray     one Ray task per run (`ray.run_sweep`)

Claims (`claims`) and signal handling (`stop`) have their own modules; the progress
printer (`progress`) is apart from the pool.
"""

from .attempt import RunReport, train_claimed

EXECUTORS = ("local", "slurm", "ray")

__all__ = ["EXECUTORS", "RunReport", "train_claimed"]
