"""The psf stage's cell builds on the worker pool (:func:`phot7dt.parallel.map_ordered`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from phot7dt.config.epsf import EpsfParams
from phot7dt.frames import Box, FrameSet
from phot7dt.parallel import map_ordered
from phot7dt.pipelines.psf.cell_task import CellResult, run_cell
from phot7dt.workers import resolve_workers

__all__ = ["n_workers", "run_cells"]

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
    thumbnails: bool,
) -> list[CellResult]:
    """Build every (band, cell) task in the worker pool (:func:`phot7dt.parallel.map_ordered`);
    ``thumbnails``: keep each cell's thumbnail for the star-selection sheets."""
    workers = min(n_workers(p, len(seeds_by_band)), max(len(tasks), 1))
    args = [
        (frames, band, cell, _seeds_near(seeds_by_band.get(band), cell[2], p.half_size), p,
         max_cutouts, fit_radius_fwhm, thumbnails)
        for band, cell in tasks
    ]
    logger.info("Building %d ePSF cells with %d worker(s)", len(tasks), workers)
    return map_ordered(run_cell, args, workers, "build_epsf", "cell")


