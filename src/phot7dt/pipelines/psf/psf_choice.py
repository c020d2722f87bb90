"""Which PSF the fitter gets for a band and cell: the ePSF or a fallback.

A fallback stamp is drawn from ``patch_run.psf_fallback_model`` with the FWHM
(and, for the Moffat, beta) of a
:class:`~phot7dt.pipelines.psf.fallback_shape.FallbackShape`: fitted to PSF
stars of the cell, its neighbours or the band, or the header's as a last
resort. The reason starts with why the ePSF is not used (``low-star ePSF``
... for the audit columns) and names the level the shape comes from.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from phot7dt.config.epsf import MoffatPsfParams
from phot7dt.config.patch_run import PatchRunParams
from phot7dt.pipelines.psf.fallback_shape import FallbackShape
from phot7dt.pipelines.psf.stamp_models import (
    StampMetrics,
    gaussian_stamp,
    moffat_stamp,
    ncircular_gaussian_stamp,
)
from phot7dt.psf_grid import PSFChoice

__all__ = ["choose_psf", "fallback_psf"]

#: Smallest fallback FWHM, pixels (tract7dt's floor).
MIN_FALLBACK_FWHM_PIX = 1.0


@functools.lru_cache(maxsize=256)
def _fallback_stamp(model: str, fwhm: float, beta: float, n: int, radius: float):
    if model == "moffat":
        return moffat_stamp(fwhm, beta, radius)
    if model == "ncircular_gaussian":
        return ncircular_gaussian_stamp(fwhm, n, radius)
    return gaussian_stamp(fwhm, radius)


def fallback_psf(
    why: str, shape: FallbackShape, nstars: int, run: PatchRunParams, moffat: MoffatPsfParams
) -> PSFChoice:
    """The configured fallback PSF (``patch_run.psf_fallback_model``) with ``shape``'s FWHM.

    Parameters
    ----------
    why : str
        Why the ePSF is not used; starts the recorded reason.
    shape : FallbackShape
        FWHM (pixels), beta and the level they come from (fitted to stars or the header).
    nstars : int
        Stars used by the cell's ePSF build (0 if none).
    run, moffat : PatchRunParams, MoffatPsfParams
        ``patch_run`` and ``moffat_psf`` sections.
    """
    fwhm = max(float(shape.fwhm_pix), MIN_FALLBACK_FWHM_PIX)
    model = run.psf_fallback_model
    if model == "moffat":
        radius, beta = moffat.radius_pix, shape.beta
    else:
        radius, beta = run.fallback_stamp_radius_pix, None
    stamp = _fallback_stamp(model, fwhm, beta or 0.0, run.ncircular_gaussian_n, radius)
    reason = f"{why}; {model} fallback, {shape.source}"
    return PSFChoice(model, stamp, fwhm, beta, nstars, reason, shape.level, shape.nstars)


def choose_psf(
    stamp,
    metrics: StampMetrics | None,
    nstars: int,
    failure: str,
    shape: Callable[[], FallbackShape],
    run: PatchRunParams,
    moffat: MoffatPsfParams,
) -> PSFChoice:
    """The ePSF when it used at least ``min_epsf_nstars_for_use`` stars, else the fallback.

    Parameters
    ----------
    stamp : ndarray or None
        The cell's ePSF stamp (None when no ePSF was built).
    metrics : StampMetrics or None
        Measurements of ``stamp``.
    nstars : int
        Stars the build actually used.
    failure : str
        Why no ePSF exists ("" when one was built).
    shape : callable
        Returns the fallback's FWHM and beta (called only when a fallback is needed).
    run, moffat : PatchRunParams, MoffatPsfParams
        ``patch_run`` and ``moffat_psf`` sections.
    """
    if stamp is None:
        return fallback_psf(failure, shape(), nstars, run, moffat)
    if nstars < run.min_epsf_nstars_for_use:
        why = (f"low-star ePSF: {nstars} stars used < "
               f"min_epsf_nstars_for_use={run.min_epsf_nstars_for_use}")
        return fallback_psf(why, shape(), nstars, run, moffat)
    if metrics is None or not math.isfinite(metrics.fwhm_pix) or metrics.fwhm_pix <= 0:
        return fallback_psf("ePSF shape could not be measured", shape(), nstars, run, moffat)
    return PSFChoice("epsf", stamp, metrics.fwhm_pix, metrics.moffat_beta, nstars,
                     f"ePSF from {nstars} stars")
