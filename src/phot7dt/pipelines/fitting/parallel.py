"""Map patch tasks over worker processes: joblib (loky) by default, a dask cluster on request.

Outcomes come back in completion order (the caller sorts them); a task
function must catch its own errors so one failing patch never stops the map.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar

from joblib import Parallel, delayed, parallel_config

__all__ = ["map_unordered", "n_workers"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Environment variables that cap BLAS/OpenMP threads in a worker process.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)
#: Workers of the ``dask_scheduler: local`` cluster.
LOCAL_CLUSTER_WORKERS = 2


def n_workers(max_workers: int | Literal["auto"], n_tasks: int) -> int:
    """Worker processes: ``max_workers`` ("auto" = CPU count), at most the CPU and task counts."""
    cpus = os.cpu_count() or 1
    wanted = cpus if max_workers == "auto" else int(max_workers)
    return max(1, min(wanted, cpus, n_tasks))


@contextlib.contextmanager
def _dask_client(scheduler: str, threads_per_process: int) -> Iterator[Any]:
    from dask.distributed import Client, LocalCluster

    if scheduler == "local":
        env = dict.fromkeys(THREAD_ENV_VARS, str(threads_per_process))
        with (
            LocalCluster(
                n_workers=LOCAL_CLUSTER_WORKERS,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                env=env,
            ) as cluster,
            Client(cluster) as client,
        ):
            logger.info("dask: local cluster of %d worker processes", LOCAL_CLUSTER_WORKERS)
            yield client
        return
    with Client(scheduler) as client:
        logger.info("dask: connected to scheduler %s", scheduler)
        yield client


def map_unordered(
    function: Callable[[T], R],
    tasks: Sequence[T],
    *,
    max_workers: int | Literal["auto"],
    threads_per_process: int,
    dask_scheduler: str | None,
) -> Iterator[R]:
    """Yield ``function(task)`` for every task, in completion order.

    Parameters
    ----------
    function : callable
        Picklable, top-level function; it must not raise for a single bad task.
    tasks : sequence
        Picklable task records (small: they are shipped to the workers).
    max_workers : int or "auto"
        Local worker processes (ignored on a dask cluster, which has its own).
    threads_per_process : int
        BLAS/OpenMP threads per worker (joblib's ``inner_max_num_threads``).
    dask_scheduler : str or None
        ``"local"`` (a loopback LocalCluster), a scheduler address, or None for joblib's loky.
    """
    if not tasks:
        return
    if dask_scheduler:
        with _dask_client(dask_scheduler, threads_per_process), parallel_config(backend="dask"):
            yield from Parallel(n_jobs=-1, return_as="generator_unordered")(
                delayed(function)(t) for t in tasks
            )
        return
    workers = n_workers(max_workers, len(tasks))
    if workers == 1:
        logger.info("fitting %d patch(es) in this process", len(tasks))
        yield from (function(t) for t in tasks)
        return
    logger.info(
        "fitting %d patches on %d worker processes (%d BLAS thread(s) each)",
        len(tasks),
        workers,
        threads_per_process,
    )
    with parallel_config(backend="loky", inner_max_num_threads=threads_per_process):
        yield from Parallel(n_jobs=workers, return_as="generator_unordered")(
            delayed(function)(t) for t in tasks
        )
