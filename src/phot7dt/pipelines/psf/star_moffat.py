"""A Moffat fitted jointly to PSF stars: the shape of the fallback PSF where no ePSF is used.

One pixel-integrated Moffat profile (FWHM and ``beta`` shared by all stars;
``beta`` optionally fixed) and, per star, a flux and (optionally) a sub-pixel
centre are fitted by least squares to the background-subtracted pixels within
``fit_radius`` of each star. Pixels are weighted by sky plus photon noise; the
photon term comes from the model (first the starting guess, then the result
of that first pass), not from the noisy data, which would bias the profile
low at the peak. The profile is integrated over pixels exactly as
:func:`~phot7dt.pipelines.psf.stamp_models.moffat_stamp` draws the fallback
stamp, so the fitted FWHM is the FWHM before pixel convolution.

Stars the shared profile does not describe (an unflagged blend, a galaxy, a
cosmic ray) are dropped once: those whose reduced chi-square exceeds the
median of all stars by more than ``OUTLIER_MADS`` robust standard deviations
(and by at least ``OUTLIER_MIN_EXCESS``); the fit is then repeated without them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix

from phot7dt.pipelines.psf.epsf_stack import StarCutouts
from phot7dt.pipelines.psf.stamp_models import moffat_alpha, moffat_window

__all__ = ["FitStars", "MoffatStarFit", "fit_moffat_to_stars", "fit_stars_from_cutouts"]

#: A star's centre may move at most this far from its starting position, pixels.
MAX_CENTRE_SHIFT_PIX = 1.5
#: Bounds of the fitted Moffat index.
BETA_BOUNDS = (1.2, 20.0)
#: Outlier stars: reduced chi-square above the median by this many robust sigmas ...
OUTLIER_MADS = 5.0
#: ... and by at least this much.
OUTLIER_MIN_EXCESS = 0.3


@dataclasses.dataclass(frozen=True)
class FitStars:
    """Background-subtracted pixels around PSF stars (all ``m x m``, ``m`` odd).

    Attributes
    ----------
    data : (S, m, m) float32 ndarray
        Pixels on the common flux scale, 0 on bad pixels.
    bad : (S, m, m) bool ndarray
        Pixels without data.
    cx, cy : (S,) float64 ndarray
        Star centres in cutout pixel coordinates.
    x, y : (S,) float64 ndarray
        Star centres in working-frame pixels.
    flux : (S,) float64 ndarray
        Initial flux estimates (common flux scale).
    """

    data: np.ndarray
    bad: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray

    def __len__(self) -> int:
        return len(self.data)

    def take(self, index) -> FitStars:
        """The stars at ``index`` (integer array or boolean mask)."""
        return FitStars(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))

    @staticmethod
    def concat(parts: list[FitStars]) -> FitStars:
        """All stars of ``parts`` (at least one part, same cutout size)."""
        names = [f.name for f in dataclasses.fields(FitStars)]
        return FitStars(*(np.concatenate([getattr(p, n) for p in parts]) for n in names))


def fit_stars_from_cutouts(stars: StarCutouts, radius: float) -> FitStars:
    """The central ``2 ceil(radius) + 3`` pixels of each star cutout, as :class:`FitStars`."""
    n = stars.data.shape[1]
    c = (n - 1) // 2
    half = min(math.ceil(radius) + 1, c)
    box = slice(c - half, c + half + 1)
    return FitStars(
        stars.data[:, box, box].astype(np.float32), stars.bad[:, box, box].copy(),
        stars.cx - (c - half), stars.cy - (c - half),
        stars.origin[:, 0] + stars.cx, stars.origin[:, 1] + stars.cy, stars.flux.copy(),
    )


@dataclasses.dataclass(frozen=True)
class MoffatStarFit:
    """Result of :func:`fit_moffat_to_stars` (pixels)."""

    fwhm_pix: float
    beta: float
    fwhm_err_pix: float
    beta_err: float
    nstars: int
    chi2_dof: float


class _Problem:
    """Weighted residuals of the joint fit.

    Parameters ``[log alpha, log(beta - 1), g_1 .. g_K | per star: flux, dx, dy]``;
    star ``s`` has ``log alpha + sum_k g_k terms[s, k]`` (``log(beta - 1)``
    absent with a fixed ``beta``, ``dx, dy`` with fixed centres).
    """

    def __init__(self, stars: FitStars, fit_radius: float, noise: tuple[float, float],
                 free: tuple[bool, bool], terms: np.ndarray) -> None:
        self.stars, self.noise, self.terms = stars, noise, terms
        self.free_centres, self.free_beta = free
        yy, xx = np.indices(stars.data.shape[1:])
        self.regions = [(np.hypot(xx - cx, yy - cy) <= fit_radius) & ~bad
                        for cx, cy, bad in zip(stars.cx, stars.cy, stars.bad, strict=True)]
        self.windows = [_bounding_window(r) for r in self.regions]
        self.inv_sigma = [np.full(r.sum(), 1.0 / math.sqrt(noise[0])) for r in self.regions]
        self.n_shape = 2 if self.free_beta else 1
        self.n_global = self.n_shape + terms.shape[1]
        self.n_star = 3 if self.free_centres else 1

    def unpack(self, p: np.ndarray, beta_fixed: float):
        beta = 1.0 + math.exp(p[1]) if self.free_beta else beta_fixed
        alphas = np.exp(p[0] + self.terms @ p[self.n_shape : self.n_global])
        per_star = p[self.n_global :].reshape(len(self.stars), self.n_star)
        return alphas, beta, per_star

    def models(self, p: np.ndarray, beta_fixed: float) -> list[np.ndarray]:
        alphas, beta, per_star = self.unpack(p, beta_fixed)
        out = []
        for s, q in enumerate(per_star):
            dx, dy = (q[1], q[2]) if self.free_centres else (0.0, 0.0)
            rows, cols, inside = self.windows[s]
            image = moffat_window(rows, cols, self.stars.cx[s] + dx, self.stars.cy[s] + dy,
                                  alphas[s], beta)
            out.append(q[0] * self.stars.flux[s] * image[inside])
        return out

    def residuals(self, p: np.ndarray, beta_fixed: float) -> np.ndarray:
        models = self.models(p, beta_fixed)
        return np.concatenate([(self.stars.data[s][r] - m) * w for s, (r, m, w) in enumerate(
            zip(self.regions, models, self.inv_sigma, strict=True))])

    def star_chi2(self, p: np.ndarray, beta_fixed: float) -> np.ndarray:
        """Reduced chi-square of each star (pixels per star minus its own parameters)."""
        models = self.models(p, beta_fixed)
        return np.array([float((((self.stars.data[s][r] - m) * w) ** 2).sum())
                         / max(r.sum() - self.n_star, 1)
                         for s, (r, m, w) in enumerate(zip(self.regions, models, self.inv_sigma,
                                                           strict=True))])

    def reweight(self, p: np.ndarray, beta_fixed: float) -> None:
        sky_var, gain = self.noise
        self.inv_sigma = [1.0 / np.sqrt(sky_var + np.clip(m, 0.0, None) / gain)
                          for m in self.models(p, beta_fixed)]

    def sparsity(self) -> lil_matrix:
        sizes = [int(r.sum()) for r in self.regions]
        jac = lil_matrix((sum(sizes), self.n_global + self.n_star * len(sizes)), dtype=int)
        start = 0
        for s, n in enumerate(sizes):
            jac[start : start + n, : self.n_global] = 1
            col = self.n_global + self.n_star * s
            jac[start : start + n, col : col + self.n_star] = 1
            start += n
        return jac

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = [math.log(0.2), math.log(BETA_BOUNDS[0] - 1.0)][: self.n_shape]
        hi = [math.log(50.0), math.log(BETA_BOUNDS[1] - 1.0)][: self.n_shape]
        lo, hi = lo + [-1.0] * self.terms.shape[1], hi + [1.0] * self.terms.shape[1]
        lo_s = [1e-3, -MAX_CENTRE_SHIFT_PIX, -MAX_CENTRE_SHIFT_PIX][: self.n_star]
        hi_s = [1e3, MAX_CENTRE_SHIFT_PIX, MAX_CENTRE_SHIFT_PIX][: self.n_star]
        n = len(self.stars)
        return np.array(lo + lo_s * n), np.array(hi + hi_s * n)


def _bounding_window(region: np.ndarray):
    """Float row and column indices of the box around ``region``, and ``region`` in that box."""
    rows, cols = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    if not rows.size:
        return np.zeros(0), np.zeros(0), np.zeros((0, 0), bool)
    inside = region[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return (np.arange(rows[0], rows[-1] + 1, dtype=float),
            np.arange(cols[0], cols[-1] + 1, dtype=float), inside)


def _global_errors(jac, p: np.ndarray, scale: float, n_shape: int, beta: float):
    """1-sigma errors of FWHM and beta from the Gauss-Newton covariance (delta method)."""
    jtj = (jac.T @ jac).toarray() if hasattr(jac, "toarray") else jac.T @ jac
    try:
        cov = np.linalg.inv(jtj)[:n_shape, :n_shape] * scale
    except np.linalg.LinAlgError:
        return math.nan, math.nan
    alpha = math.exp(p[0])
    root = math.sqrt(2.0 ** (1.0 / beta) - 1.0)
    d_fwhm = [2.0 * alpha * root]  # d fwhm / d log alpha
    if n_shape == 2:
        d_root = -(2.0 ** (1.0 / beta)) * math.log(2.0) / beta**2 / (2.0 * root)
        d_fwhm.append(2.0 * alpha * d_root * (beta - 1.0))  # d fwhm / d log(beta - 1)
    g = np.array(d_fwhm)
    fwhm_err = math.sqrt(max(float(g @ cov @ g), 0.0))
    beta_err = math.sqrt(max(cov[1, 1], 0.0)) * (beta - 1.0) if n_shape == 2 else 0.0
    return fwhm_err, beta_err


def fit_moffat_to_stars(
    stars: FitStars,
    sky_sigma: float,
    gain: float,
    fwhm_guess: float,
    beta_guess: float,
    fit_radius: float,
    free_centres: bool = True,
    free_beta: bool = True,
    terms: np.ndarray | None = None,
) -> MoffatStarFit | None:
    """Fit one Moffat (FWHM, beta) jointly to ``stars`` (see module doc).

    Parameters
    ----------
    stars : FitStars
        Background-subtracted star pixels (common flux scale).
    sky_sigma : float
        Sky noise per pixel (common flux scale).
    gain : float
        Electrons per common-scale count (``inf`` for sky noise only).
    fwhm_guess, beta_guess : float
        Starting FWHM (pixels) and ``beta``; ``beta_guess`` is kept when not ``free_beta``.
    fit_radius : float
        Pixels within this distance (pixels) of a star's centre enter the fit.
    free_centres, free_beta : bool
        Fit each star's centre / the Moffat index (else keep them).
    terms : (S, K) ndarray, optional
        Field-position terms of each star (zero at the position the result
        describes): ``log alpha`` of star ``s`` is ``log alpha + g . terms[s]``
        with fitted ``g``. None for one profile shared by all stars.

    Returns
    -------
    MoffatStarFit or None
        None when there is no star or the least-squares fit fails.
    """
    if len(stars) == 0:
        return None
    terms = np.zeros((len(stars), 0)) if terms is None else np.asarray(terms, float)
    guess = (fwhm_guess, beta_guess)
    fitted = _fit(stars, terms, fit_radius, (sky_sigma**2, gain), (free_centres, free_beta), guess)
    if fitted is None:
        return None
    keep = _inliers(fitted[2])
    if not keep.all():
        fitted = _fit(stars.take(keep), terms[keep], fit_radius, (sky_sigma**2, gain),
                      (free_centres, free_beta), guess)
        if fitted is None:
            return None
    problem, result, _ = fitted
    p = result.x
    alpha, beta = math.exp(p[0]), problem.unpack(p, beta_guess)[1]
    dof = max(result.fun.size - p.size, 1)
    chi2_dof = float(result.fun @ result.fun) / dof
    fwhm = 2.0 * alpha * math.sqrt(2.0 ** (1.0 / beta) - 1.0)
    fwhm_err, beta_err = _global_errors(result.jac, p, max(chi2_dof, 1.0), problem.n_shape, beta)
    return MoffatStarFit(fwhm, beta, fwhm_err, beta_err, len(problem.stars), chi2_dof)


def _inliers(chi2: np.ndarray) -> np.ndarray:
    """Stars whose reduced chi-square is not an outlier (see module doc)."""
    if len(chi2) < 3:
        return np.ones(len(chi2), bool)
    median = float(np.median(chi2))
    spread = 1.4826 * float(np.median(np.abs(chi2 - median)))
    return chi2 <= median + max(OUTLIER_MADS * spread, OUTLIER_MIN_EXCESS)


def _fit(stars: FitStars, terms: np.ndarray, fit_radius: float, noise, free, guess):
    """Two weighted least-squares passes; (problem, result, per-star chi2) or None."""
    fwhm_guess, beta_guess = guess
    problem = _Problem(stars, fit_radius, noise, free, terms)
    start = [math.log(moffat_alpha(fwhm_guess, beta_guess)), math.log(beta_guess - 1.0)]
    start = start[: problem.n_shape] + [0.0] * terms.shape[1]
    p = np.array(start + [1.0, 0.0, 0.0][: problem.n_star] * len(stars))
    lower, upper = problem.bounds()
    p = np.clip(p, lower, upper)
    sparsity = problem.sparsity()
    result = None
    for _ in range(2):  # weights from the start model, then from the first fit
        problem.reweight(p, beta_guess)
        result = least_squares(problem.residuals, p, bounds=(lower, upper), args=(beta_guess,),
                               jac_sparsity=sparsity, x_scale="jac", method="trf")
        if result.status <= 0 or not np.all(np.isfinite(result.x)):
            return None
        p = result.x
    return problem, result, problem.star_chi2(p, beta_guess)
