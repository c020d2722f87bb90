"""How the PSF changes across one ePSF cell, measured on the cell's own stars.

A cell's stack is the PSF of its S/N-weighted average star; a star elsewhere in
the cell sees a slightly wider, narrower or more elliptical PSF. To first order
such a change is a convolution with a small Gaussian of covariance ``dsigma``
(possibly negative), which changes a stamp ``P`` by
``dsigma_xx d2P/dx2 / 2 + dsigma_xy d2P/dxdy + dsigma_yy d2P/dy2 / 2``.

1. :func:`star_moment_offsets` regresses each aligned star image on ``P``, its
   two first derivatives (a residual flux and centre) and those three second
   derivatives: a linear least-squares fit per star, giving ``dsigma`` (px**2)
   and its variance.
2. :func:`fit_moment_field` fits ``dsigma = a + g_x (x - x0) + g_y (y - y0)``
   to the stars by weighted least squares with 4-sigma clipping (an offset only
   with fewer than ``min_gradient_stars`` stars), a
   :class:`~phot7dt.psf_grid.MomentField` the fitter applies at each patch.
"""

from __future__ import annotations

import numpy as np

from phot7dt.psf_grid import MomentField

__all__ = ["fit_moment_field", "star_moment_offsets"]

#: Fit radius of the per-star regression, in FWHMs (holds the core and shoulders).
FIT_RADIUS_FWHM = 3.0
#: Stars further than this many sigma from the fitted field are dropped (one pass).
CLIP_SIGMA = 4.0


def _templates(profile: np.ndarray) -> np.ndarray:
    """``P`` and its derivatives ``(P, Px, Py, Pxx/2, Pxy, Pyy/2)``, shape (6, n, n)."""
    n = profile.shape[0]
    kx = 2j * np.pi * np.fft.rfftfreq(n)[None, :]
    ky = 2j * np.pi * np.fft.fftfreq(n)[:, None]
    ft = np.fft.rfft2(profile)
    factors = [1.0, kx, ky, 0.5 * kx**2, kx * ky, 0.5 * ky**2]  # Fourier images of d/dx, d/dy
    return np.stack([np.fft.irfft2(ft * f, s=profile.shape) for f in factors])


def star_moment_offsets(aligned: np.ndarray, weight: np.ndarray, profile: np.ndarray,
                        fwhm: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-star second-moment offsets from the stack, px**2.

    Parameters
    ----------
    aligned : (S, n, n) float64 ndarray
        Star images moved to the stamp centre and divided by their fluxes.
    weight : (S, n, n) float64 ndarray
        Inverse variance of ``aligned`` (0 = no data).
    profile : (n, n) float64 ndarray
        The stack, unit sum, centred like ``aligned``.
    fwhm : float
        PSF FWHM, px.

    Returns
    -------
    dsigma, variance : (S, 3) float64 ndarrays
        ``(s_xx, s_xy, s_yy)`` per star and their variances (NaN where the
        fit is singular).
    """
    n = profile.shape[0]
    c = (n - 1) / 2
    yy, xx = np.indices((n, n))
    region = np.hypot(xx - c, yy - c) <= max(FIT_RADIUS_FWHM * fwhm, 5.0)
    design = _templates(profile)[:, region]  # (6, m)
    out = np.full((len(aligned), 3), np.nan)
    var = np.full((len(aligned), 3), np.nan)
    for s in range(len(aligned)):
        w = weight[s][region]
        normal = (design * w) @ design.T
        try:
            cov = np.linalg.inv(normal)
        except np.linalg.LinAlgError:
            continue
        beta = cov @ ((design * w) @ (aligned[s][region] - profile[region]))
        out[s], var[s] = beta[3:], np.diag(cov)[3:]
    return out, var


def _weighted_fit(design: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    normal = (design * w) @ design.T
    return np.linalg.solve(normal, (design * w) @ y)


def fit_moment_field(x: np.ndarray, y: np.ndarray, dsigma: np.ndarray, variance: np.ndarray,
                     min_gradient_stars: int) -> MomentField | None:
    """The cell's :class:`~phot7dt.psf_grid.MomentField` from its stars (None with < 3).

    Parameters
    ----------
    x, y : (S,) float64 ndarrays
        Star positions, working-frame px.
    dsigma, variance : (S, 3) float64 ndarrays
        From :func:`star_moment_offsets`.
    min_gradient_stars : int
        Fewest stars for fitting the gradient (fewer: offset only).
    """
    ok = np.all(np.isfinite(dsigma), axis=1) & np.all(variance > 0, axis=1)
    if ok.sum() < 3:
        return None
    x, y, d, v = x[ok], y[ok], dsigma[ok], variance[ok]
    w_pos = 1.0 / v.mean(axis=1)
    x0, y0 = np.average(x, weights=w_pos), np.average(y, weights=w_pos)
    spread = np.sqrt(np.average((x - x0) ** 2 + (y - y0) ** 2, weights=w_pos))
    gradient = len(x) >= min_gradient_stars and spread > 0
    design = np.vstack([np.ones_like(x), x - x0, y - y0]) if gradient else np.ones((1, len(x)))
    coef = np.zeros((3, 3))
    for j in range(3):
        keep = np.ones(len(x), bool)
        for _ in range(2):
            beta = _weighted_fit(design[:, keep], d[keep, j], 1.0 / v[keep, j])
            resid = (d[:, j] - beta @ design) / np.sqrt(v[:, j])
            scale = max(1.0, float(np.sqrt(np.mean(resid[keep] ** 2))))
            keep = np.abs(resid) <= CLIP_SIGMA * scale
            if keep.sum() < design.shape[0] + 1:
                keep[:] = True
                break
        coef[: design.shape[0], j] = _weighted_fit(design[:, keep], d[keep, j], 1.0 / v[keep, j])
    return MomentField(x0, y0, coef)
