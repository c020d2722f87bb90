"""PSF choice of every cell of one band: the ePSF, or a fallback fitted to the band's stars.

The fallback Moffat fits are joint least-squares fits to up to
``moffat_psf.fit_max_stars`` stars (tens of milliseconds each, about what a
cell's ePSF build costs), so ``build_epsf`` runs this per band in the worker
pool, where BLAS is pinned to one thread.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from phot7dt.config.epsf import MoffatPsfParams
from phot7dt.config.patch_run import PatchRunParams
from phot7dt.frames import Box
from phot7dt.pipelines.psf.cell_task import CellResult
from phot7dt.pipelines.psf.fallback_shape import BandStars, fallback_shape
from phot7dt.pipelines.psf.psf_choice import choose_psf, fallback_psf
from phot7dt.pipelines.psf.stamp_models import StampMetrics
from phot7dt.psf_grid import PSFChoice

__all__ = ["CellOutcome", "choose_band"]


@dataclasses.dataclass(frozen=True)
class CellOutcome:
    """What the PSF choice needs of one cell's build (``skipped``: no active source)."""

    row: int
    col: int
    box: Box
    skipped: bool
    stamp: np.ndarray | None
    metrics: StampMetrics | None
    nstars_used: int
    message: str

    @classmethod
    def of(cls, res: CellResult) -> CellOutcome:
        stamp = res.build.stamp if res.build else None
        return cls(res.row, res.col, res.box, res.status == "skipped", stamp, res.metrics,
                   res.nstars_used, res.message)


def choose_band(stars: BandStars, cells: list[CellOutcome], run: PatchRunParams,
                moffat: MoffatPsfParams) -> list[PSFChoice]:
    """The PSF of each of ``cells`` (one band), in order; fallback shapes from ``stars``."""
    choices = []
    for cell in cells:
        shape = functools.partial(fallback_shape, stars, (cell.row, cell.col), cell.box, moffat,
                                  run.fallback_default_fwhm_pix)
        if cell.skipped:
            choice = fallback_psf("cell has no active source, ePSF not built", shape(), 0, run,
                                  moffat)
        else:
            choice = choose_psf(cell.stamp, cell.metrics, cell.nstars_used, cell.message, shape,
                                run, moffat)
        choices.append(choice)
    return choices
