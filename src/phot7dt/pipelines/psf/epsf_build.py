"""Build one cell's ePSF from its accepted stars.

Two builders (``epsf.builder``): ``stack``, the S/N-weighted Fourier-aligned
stack of :mod:`~phot7dt.pipelines.psf.epsf_stack`, and ``photutils``,
tract7dt's ``EPSFBuilder`` median stack. For the latter, bad pixels get zero
weight (tract7dt gave them the median weight) and each star's flux starts as
the sum of its valid pixels, so photutils never has to interpolate missing
star data. Either way the count of stars *used* excludes the stars the
builder dropped after failed fits. With ``model_wings`` the noise-dominated
outskirts of the stamp are replaced by the Moffat fitted to its core (see
:func:`~phot7dt.pipelines.psf.stamp_models.model_wings`).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING

import numpy as np

from phot7dt.config.epsf import EpsfParams
from phot7dt.pipelines.psf.epsf_stack import StarCutouts, shifted_copies, stack_epsf
from phot7dt.pipelines.psf.model_error import PsfFluxRatios
from phot7dt.pipelines.psf.stamp_models import model_wings
from phot7dt.psf_grid import MomentField

if TYPE_CHECKING:
    from photutils.psf import EPSFStars

__all__ = ["EPSFBuild", "build_cell_epsf"]

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
    flux_ratios : PsfFluxRatios
        Leave-one-out PSF/aperture flux ratios of the used stars (stack builder;
        empty for photutils).
    moment_field : MomentField or None
        Change of the PSF's second moments across the cell (stack builder with
        ``psf_spatial_model``).
    core_shape : (float, float) or None
        ``alpha`` (pixels) and ``beta`` of the Moffat fitted to the stack's core
        (stack builder), where later fits of the stamp start.
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
    flux_ratios: PsfFluxRatios = dataclasses.field(default_factory=PsfFluxRatios.empty)
    moment_field: MomentField | None = None
    core_shape: tuple[float, float] | None = None


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    lo = (image.shape[0] - size) // 2
    return image[lo : lo + size, lo : lo + size]


def _crop_unit_sum(full: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Centre crop to ``size``, unit sum; and the fraction of the flux outside the crop."""
    full = np.nan_to_num(full, nan=0.0, posinf=0.0, neginf=0.0)
    crop = _centre_crop(full, size)
    total = full.sum()
    return crop / crop.sum(), float(1.0 - crop.sum() / total) if total else float("nan")


def _photutils_native(epsf) -> np.ndarray:
    """A photutils ePSF sampled at native pixels on its largest odd native grid."""
    oversampling = np.atleast_1d(epsf.oversampling)
    ny, nx = epsf.data.shape
    full = min(ny // int(oversampling[0]), nx // int(oversampling[-1]))
    full -= 1 - full % 2
    c = (full - 1) / 2
    yy, xx = np.mgrid[0:full, 0:full].astype(float)
    return epsf.evaluate(xx, yy, flux=1.0, x_0=c, y_0=c)


def _photutils_median_residual(epsf, stars: EPSFStars, size: int, max_stars: int) -> np.ndarray:
    resid = []
    for star in stars.all_good_stars[:max_stars]:
        r = star.compute_residual_image(epsf) / star.flux
        r[star.mask] = np.nan
        resid.append(r)
    if not resid:
        return np.zeros((size, size))
    return np.nan_to_num(_centre_crop(np.nanmedian(np.stack(resid), axis=0), size))


@dataclasses.dataclass(frozen=True)
class _Raw:
    """A builder's stamp before cropping, with its bookkeeping."""

    full: np.ndarray
    used: np.ndarray
    iterations: int
    converged: bool
    residual: np.ndarray
    ratios: PsfFluxRatios = dataclasses.field(default_factory=PsfFluxRatios.empty)
    moment_field: MomentField | None = None
    core_shape: tuple[float, float] | None = None


def _run_photutils(stars: StarCutouts, p: EpsfParams) -> _Raw:
    """tract7dt's EPSFBuilder median stack."""
    from astropy.stats import SigmaClip
    from photutils.psf import EPSFBuilder, EPSFStar, EPSFStars
    epsf_stars = [EPSFStar(d, weights=(~b).astype(float), cutout_center=(x, y), flux=f,
                           origin=tuple(o))
                  for d, b, x, y, f, o in zip(stars.data, stars.bad, stars.cx, stars.cy,
                                              stars.flux, stars.origin, strict=True)]
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
        result = builder(EPSFStars(epsf_stars))
    fitted = result.fitted_stars
    good = {tuple(int(v) for v in star.origin) for star in fitted.all_good_stars}
    used = np.array([tuple(int(v) for v in o) in good for o in stars.origin], bool)
    residual = _photutils_median_residual(result.epsf, fitted, p.final_psf_size,
                                          p.residual_diag_max_stars)
    return _Raw(_photutils_native(result.epsf), used, int(result.iterations),
                bool(result.converged), residual)


def _run_stack(stars: StarCutouts, p: EpsfParams, fwhm: float, sky_sigma: float,
               gain: float) -> _Raw:
    """The S/N-weighted Fourier-aligned stack, and the median residual of its used stars."""
    res = stack_epsf(stars, sky_sigma, gain, fwhm, p.maxiters, CLIP_SIGMA if p.do_clip else np.inf,
                     p.psf_error_aperture_fwhm,
                     p.psf_spatial_min_gradient_stars if p.psf_spatial_model else None)
    c = (res.stamp.shape[0] - 1) / 2
    shown = np.nonzero(res.used)[0][: p.residual_diag_max_stars]
    resid = (stars.data[shown] / res.flux[shown][:, None, None]
             - shifted_copies(res.stamp, res.cx[shown] - c, res.cy[shown] - c))
    resid[stars.bad[shown]] = np.nan
    median = (_centre_crop(np.nanmedian(resid, axis=0), p.final_psf_size) if len(shown)
              else np.zeros((p.final_psf_size, p.final_psf_size)))
    return _Raw(res.stamp, res.used, res.iterations, res.converged, np.nan_to_num(median),
                res.ratios, res.moment_field, res.core_shape)


def build_cell_epsf(
    stars: StarCutouts, star_background: dict, p: EpsfParams, fwhm_guess: float,
    max_cutouts: int, sky_sigma: float, gain: float,
) -> EPSFBuild:
    """Build the ePSF of ``stars`` with ``p.builder`` and post-process it (see module doc).

    ``fwhm_guess`` (pixels) sets the stack's star-fit radius and starts the
    Moffat fit that models the wings; ``sky_sigma`` (per pixel) and ``gain``
    (electrons per count) weight the stack.
    """
    if p.builder == "photutils":
        raw = _run_photutils(stars, p)
    else:
        raw = _run_stack(stars, p, fwhm_guess, sky_sigma, gain)
    stamp, edge = _crop_unit_sum(raw.full, p.final_psf_size)
    wing_radius, wing_fraction = (p.final_psf_size - 1) / 2, 0.0
    if p.model_wings:
        stamp, wing_radius, wing_fraction = model_wings(stamp, fwhm_guess,
                                                        start=raw.core_shape)
    used = np.nonzero(raw.used)[0]
    return EPSFBuild(
        stamp=stamp,
        nstars_extract=len(stars),
        nstars_used=len(used),
        iterations=raw.iterations,
        converged=raw.converged,
        edge_flux_fraction=edge,
        wing_radius_pix=wing_radius,
        wing_flux_fraction=wing_fraction,
        star_background=star_background,
        residual=raw.residual,
        cutouts=[np.asarray(stars.data[s], np.float32) for s in used[:max_cutouts]],
        flux_ratios=raw.ratios,
        moment_field=raw.moment_field,
        core_shape=raw.core_shape,
    )
