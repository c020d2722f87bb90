"""Patch tasks on a dask cluster: PSFs sent once per ePSF cell, BLAS threads capped remotely."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from phot7dt import parallel
from phot7dt.frames import Box
from phot7dt.pipelines.fitting.patch_task import PatchTask
from phot7dt.pipelines.fitting.tasks import detach_psfs


def _task(tag: str, cell: str, psfs: tuple) -> PatchTask:
    return PatchTask(tag, cell, Box(0, 10, 0, 10), None, None, psfs, None, None)


def test_detach_psfs_keeps_one_copy_per_cell():
    stamps = {
        c: tuple(np.full((55, 55), k + b, float) for b in range(3))
        for k, c in enumerate(["r0_c0", "r0_c1"])
    }
    tasks = [
        _task(f"p{k}", cell, stamps[cell])
        for k, cell in enumerate(["r0_c0", "r0_c0", "r0_c1", "r0_c0"])
    ]
    odd = _task("p9", "r0_c1", tuple(np.zeros((55, 55)) for _ in range(3)))  # not its cell's
    items, table = detach_psfs([*tasks, odd])
    assert sorted(table) == ["p9", "r0_c0", "r0_c1"]
    assert [key for _, key in items] == ["r0_c0", "r0_c0", "r0_c1", "r0_c0", "p9"]
    assert all(task.psfs == () for task, _ in items)
    for (task, key), original in zip(items, [*tasks, odd], strict=True):
        assert table[key] is original.psfs
        assert dataclasses.replace(task, psfs=table[key]) == original
    # What travels per patch is now tiny; the stamps (3 x 24 kB per cell) travel once.
    assert len(pickle.dumps(items[0])) < 2_000 < len(pickle.dumps(tasks[0]))


def _blas_threads(_task: object, _shared: object = None) -> int:
    from threadpoolctl import threadpool_info

    return max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


def _allow_blas_threads(n: int) -> None:
    """Raise the worker's own BLAS thread count to ``n`` (whatever its environment said)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n, user_api="blas")


@pytest.mark.xdist_group("survey")
def test_dask_tasks_run_under_the_blas_thread_limit():
    pytest.importorskip("threadpoolctl")
    distributed = pytest.importorskip("distributed")
    env = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "2")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, env=env
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(_allow_blas_threads, 2)  # the worker's own setting, independent of inherited env
        assert client.submit(_blas_threads, None).result() == 2
        limited = parallel.map_unordered(
            _blas_threads,
            [0, 1],
            max_workers=1,
            threads_per_process=1,
            dask_scheduler=cluster.scheduler_address,
            shared={"psf": np.ones(3)},
        )
        assert list(limited) == [1, 1]
