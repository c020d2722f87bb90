"""Per-source stamp sizes chosen from profile, PSF and flux.

A stamp must hold every pixel where the source's model exceeds a small
fraction ``model_trunc_frac`` of the pixel noise (so truncation is invisible
in residuals of bright sources) while staying small for faint ones:

* PSF part: the box half-width beyond which flux * PSF < frac * sigma
  (:meth:`.psf.PSF.wing_radius` of the band's PSF), maximised over bands;
* galaxy part: for each mixture component j (major-axis variance
  v_j r_e**2 + s_psf**2, s_psf = :meth:`.psf.PSF.rms_width`), the radius
  where its surface brightness drops below the same threshold; combined
  with the PSF part in quadrature.

The stamp is also the FFT box, so light beyond it wraps around; the same
threshold bounds that error.  Sizes come from :data:`._render.FFT_SIZES`.
"""

from __future__ import annotations

import numpy as np

from ._render import fft_size_at_least
from .ellipse import shape_covariance
from .mixtures import mixture_arrays

__all__ = ["stamp_sizes"]


def _galaxy_radii(kinds, params, flux, thr, s_psf2):
    """Radii (px) of G galaxies: (where each band's convolved mixture drops below ``thr``, (G, B);
    the 4-sigma extent of the widest component, (G,), for unknown fluxes).

    ``kinds`` and ``params`` are those of the galaxies, ``flux`` and ``thr`` (G, B).
    Mixtures are zero-padded to a common length (a zero amplitude adds no radius).
    """
    tables = [mixture_arrays(k, p[5]) for k, p in zip(kinds, params, strict=True)]
    amp = np.zeros((len(tables), max(t[0].size for t in tables)))
    var = np.zeros_like(amp)
    for g, (a, v) in enumerate(tables):
        amp[g, : a.size], var[g, : v.size] = np.abs(a), v
    cov, _ = shape_covariance(params[:, 2], params[:, 3], params[:, 4])
    det_c = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] ** 2
    tr_c = cov[:, 0, 0] + cov[:, 1, 1]
    lam = 0.5 * tr_c + np.sqrt(np.maximum(0.25 * tr_c**2 - det_c, 0.0))
    v, s2 = var[:, :, None], s_psf2[None, None, :]
    det = v * v * det_c[:, None, None] + v * s2 * tr_c[:, None, None] + s2**2
    peak = amp[:, :, None] * flux[:, None, :] / (2 * np.pi * np.sqrt(det))
    with np.errstate(divide="ignore", invalid="ignore"):
        arg = np.log(peak / thr[:, None, :])
    r2 = 2.0 * (v * lam[:, None, None] + s2) * np.where(arg > 0, arg, 0.0)
    r_known = np.sqrt(np.nan_to_num(r2, nan=0.0, posinf=0.0).max(axis=1))
    r_unknown = 4.0 * np.sqrt(var.max(axis=1)) * np.exp(params[:, 2])
    return r_known, r_unknown


def stamp_sizes(kinds, params, fluxes, noise_sigma, psfs, settings, frac=None):
    """Stamp (FFT) size per source.

    Parameters
    ----------
    kinds : sequence of str, length n_src
    params : ndarray, shape (n_src, 6)
    fluxes : ndarray, shape (n_src, n_band)
        Current flux estimates; NaN means unknown (the full PSF and a 4-sigma
        galaxy extent are used).
    noise_sigma : ndarray, shape (n_band,)
        Typical pixel noise per band.
    psfs : sequence of PSF, length n_band
    settings : FitSettings
    frac : float, optional
        Threshold in units of the pixel noise (default ``settings.model_trunc_frac``).

    Returns
    -------
    ndarray of int64, shape (n_src,)
    """
    frac = settings.model_trunc_frac if frac is None else frac
    params = np.asarray(params, float)
    fluxes = np.abs(np.asarray(fluxes, float))
    sigma = np.asarray(noise_sigma, float)
    s_psf2 = np.array([psf.rms_width() ** 2 for psf in psfs])
    known = np.isfinite(fluxes) & np.isfinite(sigma)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        thr = np.where(known, frac * sigma[None, :] / fluxes, 0.0)
    r_psf = np.empty(fluxes.shape)
    for b, psf in enumerate(psfs):
        r_psf[:, b] = np.where(known[:, b], psf.wing_radius(thr[:, b]), psf.half_size)
        r_psf[~np.isfinite(thr[:, b]) | (fluxes[:, b] == 0), b] = 0.0
    radius = r_psf.max(axis=1)
    gal = np.flatnonzero([kind != "STAR" for kind in kinds])
    if gal.size:
        r_known, r_unknown = _galaxy_radii(
            [kinds[s] for s in gal],
            params[gal],
            np.where(known[gal], fluxes[gal], 0.0),
            np.where(known[gal], thr[gal], 1.0),
            s_psf2,
        )
        r_gal = np.where(known[gal], r_known, r_unknown[:, None])
        radius[gal] = np.max(np.hypot(r_psf[gal], r_gal), axis=1)
    return np.array(
        [
            fft_size_at_least(
                2 * int(np.ceil(r)) + 2, settings.min_stamp_size, settings.max_stamp_size
            )
            for r in radius
        ],
        dtype=np.int64,
    )
