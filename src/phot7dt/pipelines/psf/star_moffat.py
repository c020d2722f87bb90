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

Each weighted least-squares pass is solved by
:func:`~phot7dt.pipelines.psf.arrow_lm.solve_arrow` with analytic derivatives
(:mod:`~phot7dt.pipelines.psf.moffat_profile`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from astropy.stats import mad_std

from phot7dt.pipelines.psf.arrow_lm import Evaluation, solve_arrow
from phot7dt.pipelines.psf.epsf_stack import StarCutouts
from phot7dt.pipelines.psf.moffat_profile import moffat_alpha, moffat_fwhm, moffat_integrated

__all__ = ["FitStars", "MoffatStarFit", "fit_moffat_to_stars", "fit_stars_from_cutouts"]

#: A star's centre may move at most this far from its starting position, pixels.
MAX_CENTRE_SHIFT_PIX = 1.5
#: Bounds of the fitted Moffat index.
BETA_BOUNDS = (1.2, 20.0)
#: Bounds of the fitted core radius alpha, pixels.
ALPHA_BOUNDS = (0.2, 50.0)
#: Bounds of each star's flux relative to its initial estimate.
FLUX_FACTOR_BOUNDS = (1e-3, 1e3)
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


class _Pixels:
    """The fitted pixels of each star as a row of an ``(S, P)`` table: position, data and
    whether the entry is a pixel (rows are padded to the longest)."""

    def __init__(self, stars: FitStars, fit_radius: float):
        yy, xx = np.indices(stars.data.shape[1:], dtype=float)
        region = ((np.hypot(xx[None] - stars.cx[:, None, None], yy[None] - stars.cy[:, None, None])
                   <= fit_radius) & ~stars.bad)
        star, iy, ix = np.nonzero(region)
        self.counts = region.sum(axis=(1, 2))
        slot = np.arange(len(star)) - np.repeat(np.cumsum(self.counts) - self.counts, self.counts)
        shape = (len(stars), max(int(self.counts.max(initial=0)), 1))
        self.x, self.y, self.data = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        self.valid = np.zeros(shape, bool)
        self.x[star, slot], self.y[star, slot] = ix, iy
        self.data[star, slot] = stars.data[star, iy, ix]
        self.valid[star, slot] = True


class _Problem:
    """Weighted residuals of the joint fit and their derivatives.

    Shared parameters ``[log alpha, log(beta - 1)]`` (``log alpha`` only with a
    fixed ``beta``); per star ``[k, dx, dy]`` (``k`` only with fixed centres),
    the star's flux being ``k`` times its initial estimate.
    """

    def __init__(self, stars: FitStars, fit_radius: float, noise: tuple[float, float],
                 free: tuple[bool, bool], beta_fixed: float):
        self.stars, self.noise, self.beta_fixed = stars, noise, beta_fixed
        self.free_centres, self.free_beta = free
        self.pixels = _Pixels(stars, fit_radius)
        self.n_shared = 2 if self.free_beta else 1
        self.n_local = 3 if self.free_centres else 1
        self.inv_sigma = np.where(self.pixels.valid, 1.0 / math.sqrt(noise[0]), 0.0)
        self._last = None

    def shape(self, shared: np.ndarray) -> tuple[float, float]:
        beta = 1.0 + math.exp(shared[1]) if self.free_beta else self.beta_fixed
        return math.exp(shared[0]), beta

    def model(self, shared: np.ndarray, local: np.ndarray, derivatives: bool):
        """Model per pixel ``(S, P)`` (common flux scale), the star amplitudes ``(S, 1)`` and,
        optionally, the profile and its derivatives ``(5, S, P)``.

        The last evaluation with derivatives is kept: a new pass starts where the
        previous one ended, with new weights but the same model.
        """
        key = (shared.tobytes(), local.tobytes())
        if self._last is not None and self._last[0] == key:
            return self._last[1] if derivatives else self._last[1][:2] + (None,)
        got = self._model(shared, local, derivatives)
        if derivatives:
            self._last = (key, got)
        return got

    def _model(self, shared: np.ndarray, local: np.ndarray, derivatives: bool):
        px = self.pixels
        dx, dy = (local[:, 1], local[:, 2]) if self.free_centres else (0.0, 0.0)
        cx, cy = (self.stars.cx + dx)[:, None], (self.stars.cy + dy)[:, None]
        alpha, beta = self.shape(shared)
        profile = moffat_integrated(px.x - cx, px.y - cy, alpha, beta, derivatives)
        amplitude = (local[:, 0] * self.stars.flux)[:, None]
        return (amplitude * profile[0], amplitude, profile) if derivatives else (
            amplitude * profile, amplitude, None)

    def evaluate(self, shared: np.ndarray, local: np.ndarray) -> Evaluation:
        model, amplitude, d = self.model(shared, local, derivatives=True)
        w = self.inv_sigma
        scale = w * amplitude
        shared_d = np.stack([scale * d[3], scale * d[4]][: self.n_shared], axis=2)
        local_d = [w * self.stars.flux[:, None] * d[0]]
        if self.free_centres:
            local_d += [scale * d[1], scale * d[2]]
        return Evaluation((self.pixels.data - model) * w, shared_d, np.stack(local_d, axis=2))

    def reweight(self, shared: np.ndarray, local: np.ndarray) -> None:
        sky_var, gain = self.noise
        model = self.model(shared, local, derivatives=False)[0]
        self.inv_sigma = np.where(self.pixels.valid,
                                  1.0 / np.sqrt(sky_var + np.clip(model, 0.0, None) / gain), 0.0)

    def star_chi2(self, residual: np.ndarray) -> np.ndarray:
        """Reduced chi-square of each star (pixels per star minus its own parameters)."""
        return (residual**2).sum(axis=1) / np.maximum(self.pixels.counts - self.n_local, 1)

    def bounds(self):
        lo = [math.log(ALPHA_BOUNDS[0]), math.log(BETA_BOUNDS[0] - 1.0)][: self.n_shared]
        hi = [math.log(ALPHA_BOUNDS[1]), math.log(BETA_BOUNDS[1] - 1.0)][: self.n_shared]
        lo_s = [FLUX_FACTOR_BOUNDS[0], -MAX_CENTRE_SHIFT_PIX, -MAX_CENTRE_SHIFT_PIX]
        hi_s = [FLUX_FACTOR_BOUNDS[1], MAX_CENTRE_SHIFT_PIX, MAX_CENTRE_SHIFT_PIX]
        return (np.array(lo), np.array(hi), np.array(lo_s[: self.n_local]),
                np.array(hi_s[: self.n_local]))


def _global_errors(cov: np.ndarray | None, shared: np.ndarray, scale: float, n_shared: int,
                   beta: float):
    """1-sigma errors of FWHM and beta from the Gauss-Newton covariance (delta method)."""
    if cov is None:
        return math.nan, math.nan
    cov = cov * scale
    alpha = math.exp(shared[0])
    root = math.sqrt(2.0 ** (1.0 / beta) - 1.0)
    d_fwhm = [2.0 * alpha * root]  # d fwhm / d log alpha
    if n_shared == 2:
        d_root = -(2.0 ** (1.0 / beta)) * math.log(2.0) / beta**2 / (2.0 * root)
        d_fwhm.append(2.0 * alpha * d_root * (beta - 1.0))  # d fwhm / d log(beta - 1)
    g = np.array(d_fwhm)
    fwhm_err = math.sqrt(max(float(g @ cov @ g), 0.0))
    beta_err = math.sqrt(max(cov[1, 1], 0.0)) * (beta - 1.0) if n_shared == 2 else 0.0
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
        Guess FWHM (pixels) and ``beta``: they set the first pass's weights;
        ``beta_guess`` is kept when not ``free_beta``.
    fit_radius : float
        Pixels within this distance (pixels) of a star's centre enter the fit.
    free_centres, free_beta : bool
        Fit each star's centre / the Moffat index (else keep them).

    Returns
    -------
    MoffatStarFit or None
        None when there is no star or the least-squares fit fails.
    """
    if len(stars) == 0:
        return None
    args = (fit_radius, (sky_sigma**2, gain), (free_centres, free_beta), (fwhm_guess, beta_guess))
    fitted = _fit(stars, *args)
    if fitted is None:
        return None
    keep = _inliers(fitted[0].star_chi2(fitted[1].evaluation.residual))
    if not keep.all():
        fitted = _fit(stars.take(keep), *args)
        if fitted is None:
            return None
    problem, result = fitted
    alpha, beta = problem.shape(result.shared)
    residual = result.evaluation.residual
    dof = max(int(problem.pixels.counts.sum()) - result.shared.size - result.local.size, 1)
    chi2_dof = float(np.sum(residual**2)) / dof
    fwhm_err, beta_err = _global_errors(result.shared_cov, result.shared, max(chi2_dof, 1.0),
                                        problem.n_shared, beta)
    return MoffatStarFit(moffat_fwhm(alpha, beta), beta, fwhm_err, beta_err, len(problem.stars),
                         chi2_dof)


def _inliers(chi2: np.ndarray) -> np.ndarray:
    """Stars whose reduced chi-square is not an outlier (see module doc)."""
    if len(chi2) < 3:
        return np.ones(len(chi2), bool)
    median = float(np.median(chi2))
    spread = float(mad_std(chi2))
    return chi2 <= median + max(OUTLIER_MADS * spread, OUTLIER_MIN_EXCESS)


def _fit(stars: FitStars, fit_radius: float, noise, free, guess):
    """Two weighted least-squares passes; (problem, ArrowFit) or None."""
    fwhm_guess, beta_guess = guess
    problem = _Problem(stars, fit_radius, noise, free, beta_guess)
    lo_g, hi_g, lo_l, hi_l = bounds = problem.bounds()
    guess_shared = [math.log(moffat_alpha(fwhm_guess, beta_guess)), math.log(beta_guess - 1.0)]
    guess_shared = np.clip(guess_shared[: problem.n_shared], lo_g, hi_g)
    guess_local = np.clip(np.tile([1.0, 0.0, 0.0][: problem.n_local], (len(stars), 1)),
                          lo_l, hi_l)
    shared, local = guess_shared, guess_local
    result = None
    for _ in range(2):  # weights from the guess, then from the first pass's result
        problem.reweight(shared, local)
        result = solve_arrow(problem.evaluate, shared, local, bounds)
        if result is None or not np.all(np.isfinite(result.shared)):
            return None
        shared, local = result.shared, result.local
    return problem, result
