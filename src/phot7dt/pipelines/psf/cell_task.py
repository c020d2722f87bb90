"""One unit of work of ``build_epsf``: a band in one cell, from pixels to ePSF.

Runs in a worker process; takes and returns small picklable values.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import numpy as np
import pandas as pd

from phot7dt.config.epsf import EpsfParams
from phot7dt.frames import Box, FrameSet
from phot7dt.pipelines.psf.cell_image import CellImage, load_cell_image
from phot7dt.pipelines.psf.cutouts import star_cutouts
from phot7dt.pipelines.psf.epsf_build import EPSFBuild, build_cell_epsf
from phot7dt.pipelines.psf.stamp_models import StampMetrics, measure_stamp
from phot7dt.pipelines.psf.star_moffat import FitStars, fit_stars_from_cutouts
from phot7dt.pipelines.psf.star_selection import DEFAULT_FWHM_PIX, select_stars
from phot7dt.plotting import block_mean

__all__ = ["CellResult", "run_cell"]

logger = logging.getLogger(__name__)

#: Longest side of the cell thumbnails kept for the star-selection plots, pixels.
THUMBNAIL_SIZE = 160


@dataclasses.dataclass
class CellResult:
    """What one (band, cell) build produced.

    ``status`` is ``ok`` (an ePSF was built), ``no_stars`` (no usable star),
    or ``failed`` (an error, in ``message``). ``fit_stars`` holds the pixels
    near the accepted stars for the Moffat fallback fits (None without stars);
    ``build_epsf`` drops them once the fallbacks are chosen.
    """

    band: str
    row: int
    col: int
    box: Box
    status: str
    message: str
    candidates: pd.DataFrame
    background: dict
    build: EPSFBuild | None = None
    metrics: StampMetrics | None = None
    thumbnail: np.ndarray | None = None
    thumbnail_step: int = 1
    seconds: float = 0.0
    fit_stars: FitStars | None = None

    @property
    def nstars_used(self) -> int:
        """Stars the ePSF build actually used."""
        return self.build.nstars_used if self.build is not None else 0


def _thumbnail(ci: CellImage) -> tuple[np.ndarray, int]:
    """Block-averaged cell pixels, at most ``THUMBNAIL_SIZE`` per side."""
    c, r = ci.cell, ci.region
    cell = ci.image[c.y0 - r.y0 : c.y1 - r.y0, c.x0 - r.x0 : c.x1 - r.x0]
    step = max(1, math.ceil(max(cell.shape) / THUMBNAIL_SIZE))
    return block_mean(cell, step), step


def _build(result: CellResult, ci: CellImage, accepted: pd.DataFrame, p: EpsfParams,
           max_cutouts: int, fwhm: float, fit_radius_fwhm: float) -> str:
    """Cut out the accepted stars and build the ePSF into ``result``; why not, or ""."""
    stars, star_bkg = star_cutouts(ci, accepted["x"].to_numpy(), accepted["y"].to_numpy(), p)
    if not len(stars):
        return "no star cutout with positive flux"
    guess = fwhm if math.isfinite(fwhm) and fwhm > 0 else DEFAULT_FWHM_PIX
    result.fit_stars = fit_stars_from_cutouts(stars, fit_radius_fwhm * guess)
    result.build = build_cell_epsf(stars, star_bkg, p, guess, max_cutouts, ci.sky_sigma, ci.gain)
    result.metrics = measure_stamp(result.build.stamp, guess, result.build.core_shape)
    return ""


def run_cell(
    frames: FrameSet,
    band: str,
    cell: tuple[int, int, Box],
    seeds: pd.DataFrame | None,
    p: EpsfParams,
    max_cutouts: int,
    fit_radius_fwhm: float,
    thumbnail: bool,
) -> CellResult:
    """Background, star selection, ePSF build and measurements of one band and cell.

    Parameters
    ----------
    frames : FrameSet
        Working-frame images.
    band : str
        Band to build.
    cell : (row, col, Box)
        Cell indices and box (working-frame pixels).
    seeds : DataFrame or None
        GaiaXP seeds near the cell: working-frame ``x``, ``y`` and ``mag``.
    p : EpsfParams
        ``epsf`` parameters.
    max_cutouts : int
        Star cutouts to keep for the montage plot.
    fit_radius_fwhm : float
        Radius of the pixels kept around each star for the fallback fits, in header FWHMs.
    thumbnail : bool
        Keep a block-averaged thumbnail of the cell (for the star-selection sheet).
    """
    start = time.perf_counter()
    row, col, box = cell
    fwhm = frames.frame(band).fwhm_pix
    ci = load_cell_image(frames, band, box, p)
    result = CellResult(band, row, col, box, "ok", "", pd.DataFrame(), ci.background)
    if thumbnail:
        result.thumbnail, result.thumbnail_step = _thumbnail(ci)
    try:
        result.candidates = select_stars(ci, seeds, p, fwhm)
        accepted = result.candidates[result.candidates["reason"] == ""]
        if accepted.empty:
            result.status, result.message = "no_stars", "no usable PSF star in the cell"
        else:
            why = _build(result, ci, accepted, p, max_cutouts, fwhm, fit_radius_fwhm)
            if why:
                result.status, result.message = "no_stars", why
    except Exception as exc:  # a failing cell falls back; the others continue
        logger.warning("ePSF %s r%02d_c%02d failed: %s", band, row, col, exc)
        result.status, result.message = "failed", f"ePSF build failed: {exc}"
    result.seconds = time.perf_counter() - start
    return result
