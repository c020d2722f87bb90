"""Run the psf stage's tasks (cell builds, band PSF choices) in a joblib worker pool."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import pandas as pd

from phot7dt.config.epsf import EpsfParams
from phot7dt.frames import Box, FrameSet
from phot7dt.pipelines.psf.cell_task import CellResult, run_cell
from phot7dt.progress import progress
from phot7dt.workers import resolve_workers

__all__ = ["map_tasks", "n_workers", "run_cells", "shutdown_workers"]

logger = logging.getLogger(__name__)

Task = tuple[str, tuple[int, int, Box]]


def n_workers(p: EpsfParams, n_bands: int) -> int:
    """Worker processes: 1 unless ``parallel_bands``; else ``max_workers`` for ``n_bands``
    (:func:`~phot7dt.workers.resolve_workers`: auto/0/-1 = available CPUs, at most bands)."""
    if not p.parallel_bands:
        return 1
    return resolve_workers(p.max_workers, n_bands)


def _seeds_near(seeds: pd.DataFrame | None, box: Box, margin: int) -> pd.DataFrame | None:
    """Seeds within ``margin`` pixels of ``box`` (keeps worker payloads small)."""
    if seeds is None or seeds.empty:
        return None
    inside = seeds["x"].between(box.x0 - margin, box.x1 + margin) & seeds["y"].between(
        box.y0 - margin, box.y1 + margin
    )
    return seeds[inside]


def run_cells(
    frames: FrameSet,
    tasks: Sequence[Task],
    seeds_by_band: dict[str, pd.DataFrame | None],
    p: EpsfParams,
    max_cutouts: int,
    fit_radius_fwhm: float,
) -> list[CellResult]:
    """Build every (band, cell) task in the worker pool (see :func:`map_tasks`)."""
    workers = min(n_workers(p, len(seeds_by_band)), max(len(tasks), 1))
    args = [
        (frames, band, cell, _seeds_near(seeds_by_band.get(band), cell[2], p.half_size), p,
         max_cutouts, fit_radius_fwhm)
        for band, cell in tasks
    ]
    logger.info("Building %d ePSF cells with %d worker(s)", len(tasks), workers)
    return map_tasks(run_cell, args, workers, "build_epsf", "cell")


def map_tasks(function: Callable, args: Sequence[tuple], workers: int, desc: str,
              unit: str) -> list:
    """``[function(*a) for a in args]`` with a progress bar; results in task order.

    Uses loky processes (BLAS pinned to one thread each) when more than one
    worker is configured, else runs in this process. The processes stay up
    for the next call; :func:`shutdown_workers` stops them.
    """
    from joblib import Parallel, delayed, parallel_config
    bar = progress(total=len(args), desc=desc, unit=unit)
    results: dict[int, object] = {}
    try:
        if workers == 1:
            for i, a in enumerate(args):
                results[i] = function(*a)
                bar.update()
        else:
            with parallel_config(backend="loky", inner_max_num_threads=1):
                jobs = Parallel(n_jobs=workers, return_as="generator_unordered")(
                    delayed(_indexed)(function, i, a) for i, a in enumerate(args)
                )
                for i, result in jobs:
                    results[i] = result
                    bar.update()
    finally:
        bar.close()
    return [results[i] for i in range(len(args))]


def shutdown_workers() -> None:
    """Stop the processes of joblib's reusable loky executor (the pool ``Parallel`` used).

    Idle, they would hold their memory through the stages that follow.
    """
    from joblib.externals.loky import get_reusable_executor
    get_reusable_executor(reuse=True).shutdown(wait=True)


def _indexed(function: Callable, i: int, args: tuple):
    return i, function(*args)
