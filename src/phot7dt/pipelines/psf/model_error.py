"""How well a PSF model reproduces its own stars: the fractional PSF-model flux error.

A PSF fit measures a star's flux through the PSF model; where the model differs
from the star's true PSF (noise in the stack, variation of the PSF across the
cell, a wrong core shape) the flux is off by a fraction that photon noise does
not describe. We measure that fraction on the PSF stars themselves:

1. **Leave-one-out model.** The stack is an inverse-variance weighted mean of
   aligned, flux-normalised star images ``a_k`` with per-pixel weights ``w_k``,
   so the model without star ``s`` is ``(sum_k w_k a_k - w_s a_s) / (sum_k w_k - w_s)``
   (normalised to unit sum). A star never tests a model it helped to build.
2. **PSF flux against aperture flux.** For each star, the PSF-fit amplitude
   ``k_psf = sum w a P / sum w P**2`` (pixels within ``max(2 FWHM, 4 px)``) and
   the aperture amplitude ``k_ap = sum_{r < R} a / sum_{r < R} P`` (``R =
   aperture_fwhm * FWHM``, the aperture corrected by the model's own
   encircled energy). Their ratio ``r_s = k_psf / k_ap`` is 1 for a perfect
   model, up to noise of variance ``(var_ap - var_psf) / k**2`` (the PSF fit is
   the minimum-variance estimator, so the difference of the two nested
   estimators has the difference of their variances).
3. **Excess scatter.** ``r_s ~ N(mu, sigma_s**2 + eta**2)``: :func:`excess_scatter`
   finds the maximum-likelihood ``eta`` (with ``mu`` free and 5-sigma
   clipping of outliers such as stars with an unmasked neighbour).

``eta`` is the fractional flux error a *sky-limited* PSF fit inherits from the
model: a bright star's fit, weighted by its own photon noise, depends less on
the model's shape (:func:`~phot7dt.psf_grid.sky_limited_fraction`, ``kappa``), so each star's
extra scatter is ``eta * kappa`` and the fitting stage adds
``eta * kappa * |flux|`` in quadrature to the statistical error.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from phot7dt.psf_grid import gaussian_smear, sky_limited_fraction

__all__ = ["PsfFluxRatios", "excess_scatter", "loo_flux_ratios", "pooled_eta"]

#: Ratios further than this many sigma from the mean are left out of the excess scatter.
OUTLIER_SIGMA = 5.0
#: Candidate values of eta (fractional flux error) searched by :func:`excess_scatter`.
ETA_GRID = np.concatenate([[0.0], np.geomspace(1e-4, 0.3, 300)])


@dataclasses.dataclass(frozen=True)
class PsfFluxRatios:
    """Leave-one-out PSF/aperture flux ratios of a cell's used stars.

    Attributes
    ----------
    ratio : (S,) float64 ndarray
        ``k_psf / k_ap`` per star (dimensionless).
    sigma : (S,) float64 ndarray
        Expected noise of each ratio (dimensionless).
    kappa : (S,) float64 ndarray or None
        How sky-limited each star's PSF fit is, :func:`~phot7dt.psf_grid.sky_limited_fraction`: a
        model error ``eta`` moves its flux by ``eta * kappa``.
    """

    ratio: np.ndarray
    sigma: np.ndarray
    kappa: np.ndarray | None = None

    @classmethod
    def empty(cls) -> PsfFluxRatios:
        return cls(np.zeros(0), np.zeros(0), np.zeros(0))

    def sky_limited(self) -> np.ndarray:
        """``kappa`` per star (ones when unknown)."""
        return np.ones(len(self.ratio)) if self.kappa is None else self.kappa

    def __len__(self) -> int:
        return len(self.ratio)


def _star_ratio(a, w, P, fit, ap):
    """(ratio, sigma) of one aligned star ``a`` with weights ``w`` against model ``P``."""
    fit = fit & (w > 0)
    if not np.all(w[ap] > 0):
        return None  # the aperture has a hole: its flux would be biased
    gram = float((w[fit] * P[fit] ** 2).sum())
    ee = float(P[ap].sum())
    if gram <= 0 or ee <= 0:
        return None
    k_psf = float((w[fit] * a[fit] * P[fit]).sum()) / gram
    k_ap = float(a[ap].sum()) / ee
    if not (k_psf > 0 and k_ap > 0):
        return None
    var_ap = float((1.0 / w[ap]).sum()) / ee**2
    var = max(var_ap - 1.0 / gram, 0.05 * var_ap)
    return k_psf / k_ap, np.sqrt(var) / k_ap


def _loo_models(aligned: np.ndarray, weight: np.ndarray, smear: np.ndarray | None):
    """Unit-sum leave-one-out stacks (smeared to each star's moments when ``smear`` is
    given) and the stars they belong to; stars whose stack has no positive sum are left out."""
    rest_w = weight.sum(0) - weight
    rest_wa = (weight * aligned).sum(0) - weight * aligned
    models = np.where(rest_w > 0, rest_wa / np.where(rest_w > 0, rest_w, 1), 0)
    sums = models.sum(axis=(1, 2))
    stars = np.nonzero(sums > 0)[0]
    models = models[stars] / sums[stars, None, None]
    if smear is not None and len(stars):
        models = gaussian_smear(models, np.asarray(smear)[stars])
    return models, stars


def loo_flux_ratios(aligned: np.ndarray, weight: np.ndarray, fwhm: float,
                    aperture_fwhm: float, smear: np.ndarray | None = None,
                    sky_weight: np.ndarray | None = None) -> PsfFluxRatios:
    """Leave-one-out PSF/aperture flux ratios (see module doc).

    Parameters
    ----------
    aligned : (S, n, n) float64 ndarray
        Star images moved to the stamp centre and divided by their fluxes.
    weight : (S, n, n) float64 ndarray
        Inverse variance of ``aligned`` per pixel (0 = no data), before clipping.
    fwhm : float
        PSF FWHM, pixels.
    aperture_fwhm : float
        Aperture radius in FWHMs.
    smear : (S, 3) float64 ndarray, optional
        Second-moment change ``(s_xx, s_xy, s_yy)`` (px**2) of the model at each
        star (the cell's moment field), applied with
        :func:`~phot7dt.psf_grid.gaussian_smear` before the star is measured.
    sky_weight : (S,) float64 ndarray, optional
        Inverse variance of each aligned star's pixels from the sky alone
        (``flux**2 / sky variance``), for :func:`~phot7dt.psf_grid.sky_limited_fraction`.
    """
    if len(aligned) < 3:
        return PsfFluxRatios.empty()
    n = aligned.shape[1]
    c = (n - 1) / 2
    yy, xx = np.indices((n, n))
    r = np.hypot(xx - c, yy - c)
    fit, ap = r <= max(2.0 * fwhm, 4.0), r <= aperture_fwhm * fwhm
    models, stars = _loo_models(aligned, weight, smear)
    ratios, sigmas, kappas = [], [], []
    for model, s in zip(models, stars, strict=True):
        got = _star_ratio(aligned[s], weight[s], model, fit, ap)
        if got is not None:
            ratios.append(got[0])
            sigmas.append(got[1])
            kappas.append(1.0 if sky_weight is None else float(sky_limited_fraction(
                weight[s][fit], np.full(int(fit.sum()), sky_weight[s]), model[fit])))
    return PsfFluxRatios(np.asarray(ratios, float), np.asarray(sigmas, float),
                         np.asarray(kappas, float))


def _profile_nll(r, s2, eta2, k2=1.0):
    """Negative log-likelihood of ``r`` with the mean profiled out, and that mean, for each
    ``eta**2`` of ``eta2`` (scalar or (G,): results of its shape)."""
    eta2 = np.asarray(eta2, float)
    v = s2 + eta2[..., None] * k2
    mu = np.sum(r / v, axis=-1) / np.sum(1.0 / v, axis=-1)
    return 0.5 * np.sum((r - mu[..., None]) ** 2 / v + np.log(v), axis=-1), mu


def _robust_start(r: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """Ratios within :data:`OUTLIER_SIGMA` of the median, in units of their noise plus a
    MAD-based extra scatter: the first guess that outliers cannot inflate."""
    from astropy.stats import mad_std
    eta2 = max(float(mad_std(r)) ** 2 - float(np.median(s2)), 0.0)
    return np.abs(r - np.median(r)) <= OUTLIER_SIGMA * np.sqrt(s2 + eta2)


def excess_scatter(ratio: np.ndarray, sigma: np.ndarray, kappa: np.ndarray | None = None
                   ) -> tuple[float, int]:
    """Maximum-likelihood extra scatter ``eta`` of ``ratio`` beyond ``sigma``, and stars used.

    The mean is free (it absorbs any aperture-correction offset). Ratios further
    than :data:`OUTLIER_SIGMA` from the median (in units of their noise plus a
    MAD-based scatter) are dropped first, then those as far from the fitted mean,
    and the fit repeated. Each star's extra scatter is ``eta * kappa`` (``kappa``:
    how sky-limited it is, 1 by default), so ``eta`` is the sky-limited value.
    Fewer than three usable ratios give ``(nan, n)``.
    """
    kappa = np.ones(len(ratio)) if kappa is None else np.asarray(kappa, float)
    ok = np.isfinite(ratio) & np.isfinite(sigma) & (sigma > 0) & np.isfinite(kappa)
    r, s2, k2 = ratio[ok], sigma[ok] ** 2, kappa[ok] ** 2
    if r.size < 3:
        return float("nan"), int(r.size)
    keep = _robust_start(r, s2)
    eta2 = 0.0
    for _ in range(5):
        if keep.sum() < 3:
            return float("nan"), int(keep.sum())
        nll, means = _profile_nll(r[keep], s2[keep], ETA_GRID**2, k2[keep])
        best = int(np.argmin(nll))
        eta2, mu = float(ETA_GRID[best] ** 2), float(means[best])
        new = np.abs(r - mu) <= OUTLIER_SIGMA * np.sqrt(s2 + eta2 * k2)
        if np.array_equal(new, keep):
            break
        keep = new
    return float(np.sqrt(eta2)), int(keep.sum())


def pooled_eta(cells: dict, shrink_stars: float) -> tuple[float, dict]:
    """Band-level ``eta`` from all cells' ratios, and per-cell values shrunk towards it.

    Parameters
    ----------
    cells : dict
        ``{cell key: PsfFluxRatios}`` of one band.
    shrink_stars : float
        Weight of the band value in a cell's estimate, in stars:
        ``eta_cell**2 = (n eta_own**2 + shrink_stars eta_band**2) / (n + shrink_stars)``.

    Returns
    -------
    eta_band : float
        NaN when the band has fewer than three usable stars.
    per_cell : dict
        ``{cell key: (eta, n_stars)}`` for every key of ``cells``.
    """
    ratios, sigmas, kappas = [], [], []
    for got in cells.values():
        if len(got):
            # each cell's ratios are centred on their own mean: aperture offsets differ per cell
            v = got.sigma**2
            mu = np.sum(got.ratio / v) / np.sum(1.0 / v)
            ratios.append(got.ratio / mu)
            sigmas.append(got.sigma / mu)
            kappas.append(got.sky_limited())
    if not ratios:
        return float("nan"), {key: (float("nan"), 0) for key in cells}
    eta_band, _ = excess_scatter(np.concatenate(ratios), np.concatenate(sigmas),
                                 np.concatenate(kappas))
    per_cell = {}
    for key, got in cells.items():
        own, n = (excess_scatter(got.ratio, got.sigma, got.sky_limited()) if len(got)
                  else (float("nan"), 0))
        if not np.isfinite(own):
            per_cell[key] = (eta_band, n)
        elif not np.isfinite(eta_band):
            per_cell[key] = (own, n)
        else:
            per_cell[key] = (float(np.sqrt((n * own**2 + shrink_stars * eta_band**2)
                                           / (n + shrink_stars))), n)
    return eta_band, per_cell
