"""Where a fit ran, for joining its energy with the cluster's accounting: the Slurm job
and array task, the node, the Ray task. Cheap (environment variables, and Ray only if
this process has already imported it) and never raises."""

from __future__ import annotations

import os
import platform
import sys

ENV_RAY_TASK = "GREENSCREEN_RAY_TASK_ID"  # set by a Ray task for the process it starts
_SLURM = {"slurm_job_id": "SLURM_JOB_ID", "slurm_array_job_id": "SLURM_ARRAY_JOB_ID",
          "slurm_array_task_id": "SLURM_ARRAY_TASK_ID", "slurm_cluster": "SLURM_CLUSTER_NAME"}


def job_metadata() -> dict:
    """The job this process belongs to; None for each id that does not exist here.

    Returns:
        {"node", "slurm_job_id", "slurm_array_job_id", "slurm_array_task_id",
        "slurm_cluster", "ray_task_id", "ray_job_id"}: the node is Slurm's name for it
        where Slurm runs the job (`SLURMD_NODENAME`), else the host name. The Ray ids
        come from `$GREENSCREEN_RAY_TASK_ID` when a Ray task started this process
        (greenscreen's Ray executor sets it), else from Ray's runtime context when this
        process runs inside a Ray task.

    Example:

    >>> sorted(job_metadata())[:2]
    ['node', 'ray_job_id']
    """
    env = os.environ
    out = {"node": env.get("SLURMD_NODENAME") or _host()}
    out.update({key: env.get(name) or None for key, name in _SLURM.items()})
    out.update(_ray_ids())
    # first the task that started this process (the run is a subprocess of a Ray task,
    # which does not see the task id), then this process's own task
    out["ray_task_id"] = env.get(ENV_RAY_TASK) or out["ray_task_id"]
    return out


def _host() -> str | None:
    try:
        return platform.node() or None
    except Exception:
        return None


def _ray_ids() -> dict:
    ids = {"ray_task_id": None, "ray_job_id": None}
    ray = sys.modules.get("ray")  # a Ray worker has imported it; never import it here
    if ray is None:
        return ids
    try:
        if not ray.is_initialized():
            return ids
        context = ray.get_runtime_context()
        ids["ray_job_id"] = _text(context.get_job_id())
        worker = getattr(getattr(context, "worker", None), "mode", None)
        if worker == getattr(ray, "WORKER_MODE", 1):  # a task: the driver has no task id
            ids["ray_task_id"] = _text(context.get_task_id())
    except Exception:  # an old or odd Ray: the ids are a courtesy, never a fault
        pass
    return ids


def _text(value) -> str | None:
    if value is None:
        return None
    return value.hex() if hasattr(value, "hex") and not isinstance(value, str) else str(value)
