"""Build one cell's ePSF from its accepted stars with photutils' EPSFBuilder.

Bad pixels get zero weight (tract7dt gave them the median weight), each star's
flux starts as the sum of its valid pixels, so photutils never has to
interpolate missing star data, and the count of stars *used* excludes the stars
the builder dropped after repeated fit failures. With ``model_wings`` the
noise-dominated outskirts of the stamp are replaced by the Moffat fitted to its
core (see :func:`~phot7dt.pipelines.psf.stamp_models.model_wings`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
from astropy.stats import SigmaClip, sigma_clipped_stats
from photutils.psf import EPSFBuilder, EPSFStar, EPSFStars

from phot7dt.pipelines.psf.cell_image import CellImage
from phot7dt.pipelines.psf.params import EpsfParams
from phot7dt.pipelines.psf.stamp_models import model_wings

__all__ = ["EPSFBuild", "build_cell_epsf", "star_cutouts"]

#: Recentering iterations per EPSFBuilder step (tract7dt's value).
RECENTER_MAXITERS = 30
#: Sigma of the residual clipping when ``do_clip`` is on (tract7dt's value).
CLIP_SIGMA = 5.0


@dataclasses.dataclass(frozen=True)
class EPSFBuild:
    """Outcome of one cell's ePSF build.

    Attributes
    ----------
    stamp : (n, n) float64 ndarray
        Native-scale ePSF cropped to ``final_psf_size``, unit sum.
    nstars_extract, nstars_used : int
        Stars handed to the builder and stars it kept.
    iterations : int
        Builder iterations run.
    converged : bool
        Star centres stopped moving within photutils' accuracy.
    edge_flux_fraction : float
        Flux of the built ePSF outside the final crop (lost by cropping).
    wing_radius_pix : float
        Radius beyond which the stamp is the fitted Moffat (``model_wings``;
        half the stamp when the wings are empirical).
    wing_flux_fraction : float
        Fraction of the stamp's flux that comes from the modelled wings.
    star_background : dict
        Per-star annulus background summary (n, n_ok, median).
    residual : (n, n) float64 ndarray
        Median over used stars of (star / flux - ePSF), cropped like ``stamp``.
    cutouts : list of ndarray
        Background-subtracted cutouts of used stars (for montages).
    """

    stamp: np.ndarray
    nstars_extract: int
    nstars_used: int
    iterations: int
    converged: bool
    edge_flux_fraction: float
    wing_radius_pix: float
    wing_flux_fraction: float
    star_background: dict
    residual: np.ndarray
    cutouts: list


def _annulus_background(cutout: np.ndarray, bad: np.ndarray, cx: float, cy: float,
                        p: EpsfParams) -> float | None:
    """Sigma-clipped annulus median around ``(cx, cy)``; None if too few pixels."""
    r_out = min(p.star_local_bkg_annulus_rout_pix, p.half_size - 1)
    yy, xx = np.indices(cutout.shape)
    r = np.hypot(xx - cx, yy - cy)
    ring = (r >= p.star_local_bkg_annulus_rin_pix) & (r <= r_out) & ~bad
    if ring.sum() < p.star_local_bkg_minpix:
        return None
    _, median, _ = sigma_clipped_stats(cutout[ring], sigma=p.star_local_bkg_sigma, maxiters=5)
    return float(median)


def star_cutouts(ci: CellImage, xs, ys, p: EpsfParams) -> tuple[list[EPSFStar], dict]:
    """EPSFStar cutouts of accepted stars (working-frame positions)."""
    half = p.half_size
    stars, backgrounds = [], []
    for x, y in zip(*ci.to_region(xs, ys), strict=True):
        ix, iy = int(math.floor(x + 0.5)), int(math.floor(y + 0.5))
        sl = np.s_[iy - half : iy + half + 1, ix - half : ix + half + 1]
        data = ci.image[sl].astype(np.float64)
        bad = ci.bad[sl]
        cx, cy = x - (ix - half), y - (iy - half)
        if p.star_local_bkg_subtract:
            level = _annulus_background(data, bad, cx, cy, p)
            backgrounds.append(level)
            data = data - (level or 0.0)
        data[bad] = 0.0
        flux = float(data[~bad].sum())
        if not flux > 0:
            continue
        stars.append(EPSFStar(data, weights=(~bad).astype(float), cutout_center=(cx, cy),
                              flux=flux, origin=(ix - half + ci.region.x0,
                                                 iy - half + ci.region.y0)))
    ok = [b for b in backgrounds if b is not None]
    summary = {"n": len(backgrounds), "n_ok": len(ok),
               "median": float(np.median(ok)) if ok else float("nan")}
    return stars, summary


def _native_stamp(epsf, size: int) -> tuple[np.ndarray, float]:
    """The ePSF sampled at native pixels, ``size`` wide, unit sum; and the flux outside."""
    oversampling = np.atleast_1d(epsf.oversampling)
    ny, nx = epsf.data.shape
    full = min(ny // int(oversampling[0]), nx // int(oversampling[-1]))
    full -= 1 - full % 2
    c = (full - 1) / 2
    yy, xx = np.mgrid[0:full, 0:full].astype(float)
    native = epsf.evaluate(xx, yy, flux=1.0, x_0=c, y_0=c)
    native = np.nan_to_num(native, nan=0.0, posinf=0.0, neginf=0.0)
    lo = (full - size) // 2
    crop = native[lo : lo + size, lo : lo + size]
    total = native.sum()
    return crop / crop.sum(), float(1.0 - crop.sum() / total) if total else float("nan")


def _median_residual(epsf, stars: EPSFStars, size: int, max_stars: int) -> np.ndarray:
    resid = []
    for star in stars.all_good_stars[:max_stars]:
        r = star.compute_residual_image(epsf) / star.flux
        r[star.mask] = np.nan
        resid.append(r)
    if not resid:
        return np.zeros((size, size))
    med = np.nanmedian(np.stack(resid), axis=0)
    lo = (med.shape[0] - size) // 2
    return np.nan_to_num(med[lo : lo + size, lo : lo + size])


def build_cell_epsf(
    stars: list[EPSFStar], star_background: dict, p: EpsfParams, fwhm_guess: float,
    max_cutouts: int,
) -> EPSFBuild:
    """Run EPSFBuilder on ``stars`` and post-process the ePSF (see module doc).

    ``fwhm_guess`` (pixels) starts the Moffat fit that models the wings.
    """
    builder = EPSFBuilder(
        oversampling=p.oversamp,
        smoothing_kernel=p.smoothing_kernel,
        sigma_clip=SigmaClip(sigma=CLIP_SIGMA if p.do_clip else np.inf),
        recentering_boxsize=p.recenter_boxsize,
        recentering_maxiters=RECENTER_MAXITERS,
        maxiters=p.maxiters,
        progress_bar=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = builder(EPSFStars(stars))
    fitted = result.fitted_stars
    stamp, edge = _native_stamp(result.epsf, p.final_psf_size)
    wing_radius, wing_fraction = (p.final_psf_size - 1) / 2, 0.0
    if p.model_wings:
        stamp, wing_radius, wing_fraction = model_wings(stamp, fwhm_guess)
    used = list(fitted.all_good_stars)
    return EPSFBuild(
        stamp=stamp,
        nstars_extract=len(stars),
        nstars_used=len(used),
        iterations=int(result.iterations),
        converged=bool(result.converged),
        edge_flux_fraction=edge,
        wing_radius_pix=wing_radius,
        wing_flux_fraction=wing_fraction,
        star_background=star_background,
        residual=_median_residual(result.epsf, fitted, p.final_psf_size,
                                  p.residual_diag_max_stars),
        cutouts=[np.asarray(s.data, np.float32) for s in used[:max_cutouts]],
    )
