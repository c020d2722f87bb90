"""Tile tasks on dask.distributed: a LocalCluster, a scheduler address or a scheduler file.

dask is the ``dask`` extra; it is imported when a survey runs, never when the
pipelines are registered.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from phot7dt.pipelines.survey.tile_run import TileJob, run_tile
from phot7dt.workers import available_cpus, resolve_workers

__all__ = ["available_cpus", "local_workers", "run_jobs", "survey_client"]

logger = logging.getLogger(__name__)


def local_workers(n_workers: int | Literal["auto"], n_tiles: int) -> int:
    """Local cluster workers: ``n_workers`` (:func:`~phot7dt.workers.resolve_workers`: auto/0/-1
    = available CPUs, at most those), at most one per tile."""
    return resolve_workers(n_workers, n_tiles)


def _import_distributed() -> Any:
    try:
        from dask import distributed
    except ImportError as err:
        raise ImportError(
            'the survey pipeline runs tiles on dask.distributed: pip install "phot7dt[dask]"'
        ) from err
    return distributed


@contextlib.contextmanager
def survey_client(scheduler: str, n_workers: int) -> Iterator[Any]:
    """A dask Client for the survey's tile tasks.

    Parameters
    ----------
    scheduler : str
        ``local``: a LocalCluster of ``n_workers`` single-threaded worker processes on
        127.0.0.1 (closed on exit); an existing file: a scheduler file; else an address.
    n_workers : int
        Worker processes of the local cluster.
    """
    distributed = _import_distributed()
    if scheduler == "local":
        with (
            distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            logger.info("survey: local dask cluster of %d worker process(es)", n_workers)
            yield client
        return
    if Path(scheduler).expanduser().is_file():
        with distributed.Client(scheduler_file=str(Path(scheduler).expanduser())) as client:
            logger.info("survey: connected to the scheduler of file %s", scheduler)
            yield client
        return
    with distributed.Client(scheduler) as client:
        logger.info("survey: connected to scheduler %s", scheduler)
        yield client


def _lost(job: TileJob, exc: BaseException) -> dict[str, Any]:
    return {
        "tile": job.tile,
        "status": "failed",
        "returncode": None,
        "error": f"{type(exc).__name__}: {exc}",
        "seconds": None,
        "host": "",
        "work_dir": job.work_dir,
        "log": job.log_path,
    }


def run_jobs(client: Any, jobs: Sequence[TileJob], retries: int) -> Iterator[dict[str, Any]]:
    """Run every tile job on the cluster; yield each outcome as it completes.

    A task whose worker is lost is rescheduled by the scheduler (up to its
    ``allowed-failures``); a task that still ends in an exception is resubmitted up to
    ``retries`` times and then recorded as failed with that exception. A tile whose run
    exits non-zero is an outcome (``status`` failed), not retried.
    """
    distributed = _import_distributed()
    pending: dict[Any, tuple[TileJob, int]] = {}

    def submit(job: TileJob, attempt: int) -> Any:
        future = client.submit(run_tile, job, key=f"tile-{job.tile}-{attempt}", pure=False)
        pending[future] = (job, attempt)
        return future

    completed = distributed.as_completed([submit(job, 0) for job in jobs])
    for future in completed:
        job, attempt = pending.pop(future)
        try:
            outcome = future.result()
        except Exception as exc:  # noqa: BLE001 - a lost task must not stop the survey
            if attempt < retries:
                logger.warning("survey: tile %s lost (%s); resubmitting", job.tile, exc)
                completed.add(submit(job, attempt + 1))
                continue
            outcome = _lost(job, exc)
        outcome["attempts"] = attempt + 1
        yield outcome
