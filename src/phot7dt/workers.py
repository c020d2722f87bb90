"""How many workers (processes or threads) a stage may start.

One rule for every stage: the CPUs this process may use are counted the way a
batch system grants them — the process's CPU affinity (``taskset``, a Slurm or
PBS cpuset, ``os.sched_getaffinity``) and its cgroup CPU quota (containers,
Slurm with cgroups) — as :func:`joblib.cpu_count` counts them, never the
machine's core count. A worker setting of ``"auto"``, ``0`` or ``-1`` means all
of them; a positive setting is capped at them.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["ALL_CPUS", "WorkerCount", "available_cpus", "resolve_workers"]

#: Worker settings meaning "every available CPU".
ALL_CPUS = ("auto", 0, -1)

WorkerCount = int | Literal["auto"]


def available_cpus() -> int:
    """CPUs this process may run on (affinity and cgroup quota; at least 1)."""
    import joblib
    return max(1, int(joblib.cpu_count(only_physical_cores=False)))


def resolve_workers(requested: WorkerCount, n_tasks: int | None = None) -> int:
    """Workers to start for ``requested`` (and at most ``n_tasks`` tasks); at least 1.

    Parameters
    ----------
    requested : int or "auto"
        ``"auto"``, 0 or -1: every available CPU; a positive count: that many,
        at most the available CPUs.
    n_tasks : int, optional
        Tasks to run: no more workers than tasks.

    Raises
    ------
    ValueError
        ``requested`` is below -1 or not a count.
    """
    is_count = isinstance(requested, int) and not isinstance(requested, bool)
    if not (requested == "auto" or (is_count and requested >= -1)):
        raise ValueError(
            f"worker count must be a positive integer, 0, -1 or 'auto', got {requested!r}"
        )
    cpus = available_cpus()
    workers = cpus if requested in ALL_CPUS else min(int(requested), cpus)
    if n_tasks is not None:
        workers = min(workers, n_tasks)
    return max(1, workers)
