"""FWHM and beta of the fallback PSF of a cell without a usable ePSF.

Levels, tried in order (``moffat_psf`` keys):

- ``cell_stars``: a Moffat fitted jointly to the cell's own PSF stars, when it
  has at least ``fit_min_stars``;
- ``neighbour_stars``: fitted to the stars of the cells within
  ``fit_neighbour_rings`` cells of it (a ``(2 k + 1)^2`` block, the cell
  included), when they number at least ``fit_min_stars``;
- ``band_stars``: fitted to all PSF stars of the band (at least one);
- ``header``: the header FWHM (``PEEING``/``SEEING``, else
  ``patch_run.fallback_default_fwhm_pix``) with ``moffat_psf.beta``, when the
  band has no usable star or ``fit_to_stars`` is off.

At each level at most ``fit_max_stars`` stars, those nearest the cell centre,
enter the fit. Stars are those the cells' star selection accepted (built or
skipped cells without active sources contribute none). A fit that fails moves
on to the next level.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping

import numpy as np

from phot7dt.config.epsf import MoffatPsfParams
from phot7dt.frames import Box
from phot7dt.pipelines.psf.star_moffat import FitStars, fit_moffat_to_stars
from phot7dt.psf_grid import FALLBACK_LEVELS

__all__ = ["FALLBACK_LEVELS", "FallbackShape", "BandStars", "fallback_shape", "header_shape"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FallbackShape:
    """The fallback's FWHM (pixels) and beta, the level they come from and its star count."""

    fwhm_pix: float
    beta: float
    level: str
    nstars: int
    source: str


@dataclasses.dataclass
class BandStars:
    """PSF stars of one band by cell, the band's noise, and a cache of fits by star set."""

    by_cell: Mapping[tuple[int, int], FitStars]
    sky_sigma: float
    gain: float
    header_fwhm_pix: float
    fits: dict = dataclasses.field(default_factory=dict)


def header_shape(header_fwhm_pix: float, default_fwhm_pix: float, beta: float,
                 why: str = "") -> FallbackShape:
    """Header FWHM (or the configured default) with the configured ``beta``."""
    if math.isfinite(header_fwhm_pix) and header_fwhm_pix > 0:
        fwhm, source = header_fwhm_pix, "header PEEING/SEEING"
    else:
        fwhm, source = default_fwhm_pix, "patch_run.fallback_default_fwhm_pix"
    source = f"FWHM from {source}, beta from moffat_psf.beta" + (f" ({why})" if why else "")
    return FallbackShape(float(fwhm), float(beta), "header", 0, source)


def _nearest(stars: FitStars, box: Box, limit: int) -> FitStars:
    """At most ``limit`` stars, nearest the centre of ``box`` first."""
    xc, yc = (box.x0 + box.x1 - 1) / 2, (box.y0 + box.y1 - 1) / 2
    order = np.argsort(np.hypot(stars.x - xc, stars.y - yc), kind="stable")
    return stars.take(np.sort(order[:limit]))


def _candidate_sets(band: BandStars, cell: tuple[int, int], rings: int):
    """(level, stars) per fitted level, cell first; empty levels left out."""
    r, c = cell
    near = [band.by_cell[k] for k in sorted(band.by_cell)
            if max(abs(k[0] - r), abs(k[1] - c)) <= rings]
    sets = [
        ("cell_stars", band.by_cell.get(cell)),
        ("neighbour_stars", FitStars.concat(near) if near else None),
        ("band_stars", FitStars.concat(list(band.by_cell.values())) if band.by_cell else None),
    ]
    return [(level, stars) for level, stars in sets if stars is not None and len(stars)]


def _fit(band: BandStars, stars: FitStars, m: MoffatPsfParams):
    """Cached joint Moffat fit of ``stars`` (keyed by their positions)."""
    key = tuple(np.round(np.column_stack([stars.x, stars.y]), 3).ravel())
    if key not in band.fits:
        guess = band.header_fwhm_pix if math.isfinite(band.header_fwhm_pix) else 4.0
        band.fits[key] = fit_moffat_to_stars(
            stars, band.sky_sigma, band.gain, guess, m.beta,
            m.fit_radius_fwhm * guess, free_centres=m.fit_free_centres,
            free_beta=m.fit_free_beta,
        )
    return band.fits[key]


def fallback_shape(
    band: BandStars, cell: tuple[int, int], box: Box, m: MoffatPsfParams, default_fwhm_pix: float
) -> FallbackShape:
    """FWHM and beta for the fallback PSF of ``cell`` (see module doc).

    Parameters
    ----------
    band : BandStars
        The band's PSF stars by cell and its noise.
    cell : (row, col)
        The cell that needs a fallback.
    box : Box
        The cell's box (working-frame pixels; nearest stars are counted from its centre).
    m : MoffatPsfParams
        ``moffat_psf`` parameters.
    default_fwhm_pix : float
        ``patch_run.fallback_default_fwhm_pix`` for bands without a header FWHM.
    """
    if not m.fit_to_stars:
        return header_shape(band.header_fwhm_pix, default_fwhm_pix, m.beta,
                            "moffat_psf.fit_to_stars is off")
    for level, stars in _candidate_sets(band, cell, m.fit_neighbour_rings):
        if level != "band_stars" and len(stars) < m.fit_min_stars:
            continue
        stars = _nearest(stars, box, m.fit_max_stars)
        fit = _fit(band, stars, m)
        if fit is None:
            logger.warning("Moffat fit to %d %s failed; trying the next level", len(stars), level)
            continue
        source = (f"fitted to {fit.nstars} stars ({level}): FWHM {fit.fwhm_pix:.3f}"
                  f"+-{fit.fwhm_err_pix:.3f} px, beta {fit.beta:.3f}+-{fit.beta_err:.3f}")
        return FallbackShape(fit.fwhm_pix, fit.beta, level, fit.nstars, source)
    return header_shape(band.header_fwhm_pix, default_fwhm_pix, m.beta,
                        "no usable PSF star in the band")
