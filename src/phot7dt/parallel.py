"""The one parallel map of phot7dt: joblib (loky) processes by default, a dask cluster on request.

:func:`map_unordered` yields outcomes in completion order (patch fits; a task function
must catch its own errors so one failing patch never stops the map);
:func:`map_ordered` returns them in task order with a progress bar (psf cell builds).
Worker processes run with BLAS/OpenMP pinned to ``threads_per_process`` threads.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar

from phot7dt.progress import progress
from phot7dt.workers import resolve_workers

__all__ = ["map_ordered", "map_unordered", "n_workers", "shutdown_workers"]

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
#: Whether this process has started joblib's loky pool (see :func:`shutdown_workers`).
_POOL = {"started": False}
#: Workers of the ``dask_scheduler: local`` cluster.
LOCAL_CLUSTER_WORKERS = 2


def n_workers(max_workers: int | Literal["auto"], n_tasks: int) -> int:
    """Worker processes: ``max_workers`` (:func:`~phot7dt.workers.resolve_workers`: auto/0/-1 =
    available CPUs, at most those), at most the task count."""
    return resolve_workers(max_workers, n_tasks)


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


@functools.cache
def _threadpool_limits() -> Callable[..., Any] | None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        logger.warning("threadpoolctl is not installed: BLAS threads of dask tasks are not capped")
        return None
    return threadpool_limits


def _limited_call(function: Callable[..., R], threads: int, *args: Any) -> R:
    """``function(*args)`` with BLAS/OpenMP capped at ``threads`` (on a dask worker, whose
    environment was set by whoever started it)."""
    limits = _threadpool_limits()
    if limits is None:
        return function(*args)
    with limits(limits=threads):
        return function(*args)


def _dask_map(
    client: Any, function: Callable[..., R], tasks: Sequence[T], threads: int, shared: Any
) -> Iterator[R]:
    """Submit every task; ``shared`` goes to each worker once (scattered with broadcast)."""
    from dask.distributed import as_completed

    extra = () if shared is None else (client.scatter([shared], broadcast=True)[0],)
    futures = [
        client.submit(_limited_call, function, threads, t, *extra, pure=False) for t in tasks
    ]
    for future in as_completed(futures):
        yield future.result()


def map_unordered(
    function: Callable[..., R],
    tasks: Sequence[T],
    *,
    max_workers: int | Literal["auto"],
    threads_per_process: int,
    dask_scheduler: str | None,
    shared: Any = None,
) -> Iterator[R]:
    """Yield ``function(task)`` (``function(task, shared)``) for every task, in completion order.

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
        On a cluster every task runs under ``threadpoolctl``'s limit of
        ``threads_per_process`` BLAS threads, whatever the worker's environment.
    shared : object, optional
        Passed as ``function``'s second argument. On a dask cluster it is sent to each
        worker once; locally it is pickled with every task, so give it for cluster runs.
    """
    from joblib import Parallel, delayed, parallel_config
    if not tasks:
        return
    extra = () if shared is None else (shared,)
    if dask_scheduler:
        with _dask_client(dask_scheduler, threads_per_process) as client:
            yield from _dask_map(client, function, tasks, threads_per_process, shared)
        return
    workers = n_workers(max_workers, len(tasks))
    if workers == 1:
        logger.info("running %d task(s) in this process", len(tasks))
        yield from (function(t, *extra) for t in tasks)
        return
    logger.info(
        "running %d tasks on %d worker processes (%d BLAS thread(s) each)",
        len(tasks),
        workers,
        threads_per_process,
    )
    _POOL["started"] = True
    with parallel_config(backend="loky", inner_max_num_threads=threads_per_process):
        yield from Parallel(n_jobs=workers, return_as="generator_unordered")(
            delayed(function)(t, *extra) for t in tasks
        )


def _indexed(function: Callable[..., R], item: tuple[int, tuple]) -> tuple[int, R]:
    index, args = item
    return index, function(*args)


def map_ordered(
    function: Callable[..., R], args: Sequence[tuple], workers: int, desc: str, unit: str
) -> list[R]:
    """``[function(*a) for a in args]`` on ``workers`` loky processes (one BLAS thread each;
    in this process when ``workers`` is 1), with a progress bar; results in task order.

    The processes stay up for the next call; :func:`shutdown_workers` stops them.
    """
    bar = progress(total=len(args), desc=desc, unit=unit)
    results: dict[int, R] = {}
    try:
        for index, result in map_unordered(
            functools.partial(_indexed, function),
            list(enumerate(args)),
            max_workers=workers,
            threads_per_process=1,
            dask_scheduler=None,
        ):
            results[index] = result
            bar.update()
    finally:
        bar.close()
    return [results[i] for i in range(len(args))]


def shutdown_workers() -> None:
    """Stop the processes of joblib's reusable loky executor (the pool the maps use).

    Maps with the same worker count and thread limit share that pool (``build_epsf``
    leaves it up for ``fit_patches``); idle, its processes would hold their memory
    through the stages that follow, so the last stage that uses them stops them.
    """
    if not _POOL["started"]:  # (asking loky for its executor would start one)
        return
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor(reuse=True).shutdown(wait=True)
    _POOL["started"] = False
