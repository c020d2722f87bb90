"""Per-source stamp sizes chosen from profile, PSF and flux.

A stamp must hold every pixel where the source's model exceeds a small
fraction ``model_trunc_frac`` of the pixel noise (so truncation is invisible
in residuals of bright sources) while staying small for faint ones:

* PSF part: the box half-width beyond which flux * PSF < frac * sigma
  (:meth:`wing_radius` of the band's PSF), maximised over bands;
* galaxy part: for each mixture component j (major-axis variance
  v_j r_e**2 + s_psf**2), the radius where its surface brightness drops below
  the same threshold; combined with the PSF part in quadrature.

The stamp is also the FFT box, so light beyond it wraps around; the same
threshold bounds that error.  Sizes come from :data:`render.FFT_SIZES`.
"""

from __future__ import annotations

import numpy as np

from .ellipse import shape_covariance
from .mixtures import profile_mixture
from .render import fft_size_at_least

__all__ = ["psf_sigma", "stamp_sizes"]


def psf_sigma(psf):
    """RMS width per axis (px) of a PSF, from its second moments."""
    if hasattr(psf, "stamp"):
        st = np.maximum(psf.stamp, 0.0)
        h, w = st.shape
        yy, xx = np.mgrid[:h, :w]
        r2 = (xx - w // 2) ** 2 + (yy - h // 2) ** 2
        return float(np.sqrt(0.5 * np.sum(st * r2) / st.sum()))
    return float(np.sqrt(0.5 * np.sum(psf.amp * np.trace(psf.var, axis1=1, axis2=2))))


def _galaxy_radius(kind, params, flux, thr, s_psf2):
    mix = profile_mixture(kind, params[5])
    cov, _ = shape_covariance(params[2], params[3], params[4])
    lam_max = float(np.linalg.eigvalsh(cov[0]).max())
    radius = 0.0
    for a, v in zip(mix.amp, mix.var, strict=True):
        var = v * cov[0] + s_psf2 * np.eye(2)
        peak = abs(a) * flux / (2 * np.pi * np.sqrt(np.linalg.det(var)))
        if peak > thr:
            radius = max(radius, np.sqrt(2 * (v * lam_max + s_psf2) * np.log(peak / thr)))
    return radius


def stamp_sizes(kinds, params, fluxes, noise_sigma, psfs, settings):
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

    Returns
    -------
    ndarray of int64, shape (n_src,)
    """
    frac = settings.model_trunc_frac
    s_psf2 = [psf_sigma(p) ** 2 for p in psfs]
    sizes = np.empty(len(kinds), dtype=np.int64)
    for s, kind in enumerate(kinds):
        radius = 0.0
        for b, psf in enumerate(psfs):
            f = abs(fluxes[s, b]) if np.isfinite(fluxes[s, b]) else np.inf
            if f == 0 or not np.isfinite(noise_sigma[b]):
                continue
            thr = frac * noise_sigma[b] / f if np.isfinite(f) else 0.0
            r_psf = psf.wing_radius(thr) if thr > 0 else float(psf.half_size)
            r = r_psf
            if kind != "STAR":
                if np.isfinite(f):
                    r_gal = _galaxy_radius(kind, params[s], f, thr, s_psf2[b])
                else:
                    r_gal = 4.0 * np.sqrt(profile_mixture(kind, params[s, 5]).var.max()) * np.exp(params[s, 2])
                r = float(np.hypot(r_psf, r_gal))
            radius = max(radius, r)
        sizes[s] = fft_size_at_least(2 * int(np.ceil(radius)) + 2, settings.min_stamp_size,
                                     settings.max_stamp_size)
    return sizes
