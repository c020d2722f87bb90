"""Analytic PSF stamps and measurements of PSF stamps.

Stamps sample the *pixel-convolved* profile at pixel centres (each pixel holds
the profile integrated over it), the convention of an ePSF. Measurements fit
the same pixel-integrated Moffat, so the FWHM they report is the FWHM of the
profile before pixel convolution, comparable with a seeing FWHM. Pixel
integrals use the quadrature of :mod:`~phot7dt.pipelines.psf.moffat_profile`.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from astropy.stats import mad_std

from phot7dt.pipelines.psf.arrow_lm import Evaluation, solve_arrow
from phot7dt.pipelines.psf.moffat_profile import (
    integrate_pixels,
    moffat_alpha,
    moffat_integrated,
    quadrature_offsets,
)

__all__ = [
    "MoffatFit",
    "StampMetrics",
    "fit_moffat",
    "gaussian_stamp",
    "growth_curve",
    "measure_stamp",
    "model_wings",
    "moffat_alpha",
    "moffat_pixels",
    "moffat_stamp",
    "moffat_window",
    "ncircular_gaussian_stamp",
]

#: (sigma multiples, weights) of tract7dt's NCircularGaussianPSF fallback by number of components.
NCIRCULAR_COMPONENTS = {
    1: ((1.0,), (1.0,)),
    2: ((1.0, 2.5), (0.85, 0.15)),
    3: ((1.0, 2.0, 4.0), (0.8, 0.15, 0.05)),
}
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: Default start of a stamp fit: core radius (pixels) and index.
START_ALPHA_BETA = (2.0, 3.0)


def moffat_pixels(size: int, x0: float, y0: float, alpha: float, beta: float) -> np.ndarray:
    """Unit-flux Moffat integrated over the pixels of a ``size x size`` grid, centred on
    ``(x0, y0)``."""
    idx = np.arange(size, dtype=float)
    return moffat_window(idx, idx, x0, y0, alpha, beta)


def moffat_window(rows: np.ndarray, cols: np.ndarray, x0: float, y0: float, alpha: float,
                  beta: float) -> np.ndarray:
    """:func:`moffat_pixels` on the pixels ``rows x cols`` only (float pixel indices)."""
    return moffat_integrated(np.asarray(cols, float)[None, :] - x0,
                             np.asarray(rows, float)[:, None] - y0, alpha, beta)


def _stamp_size(radius: float) -> int:
    return 2 * math.ceil(radius) + 1


def moffat_stamp(fwhm: float, beta: float, radius: float) -> np.ndarray:
    """Unit-sum pixel-integrated Moffat stamp of side ``2 ceil(radius) + 1``."""
    size = _stamp_size(radius)
    c = (size - 1) / 2
    stamp = moffat_pixels(size, c, c, moffat_alpha(fwhm, beta), beta)
    return stamp / stamp.sum()


def ncircular_gaussian_stamp(fwhm: float, n: int, radius: float) -> np.ndarray:
    """Unit-sum stamp of tract7dt's ``n``-component concentric Gaussian fallback."""
    size = _stamp_size(radius)
    c = (size - 1) / 2
    idx = np.arange(size, dtype=float) - c
    dx, dy = quadrature_offsets(idx[None, :], idx[:, None])
    r2 = dx**2 + dy**2
    sigma = fwhm / FWHM_PER_SIGMA
    scales, weights = NCIRCULAR_COMPONENTS[n]
    profile = sum(
        w * np.exp(-0.5 * r2 / (k * sigma) ** 2) / (2 * math.pi * (k * sigma) ** 2)
        for k, w in zip(scales, weights, strict=True)
    )
    stamp = integrate_pixels(profile)
    return stamp / stamp.sum()


def gaussian_stamp(fwhm: float, radius: float) -> np.ndarray:
    """Unit-sum pixel-integrated circular Gaussian stamp."""
    return ncircular_gaussian_stamp(fwhm, 1, radius)


@functools.lru_cache(maxsize=16)
def _overlaps(size: int, radii: tuple[float, ...]) -> np.ndarray:
    """Exact overlap of each pixel of a ``size x size`` grid with circles of ``radii``
    around its central pixel: ``(len(radii), size * size)``."""
    from photutils.geometry import circular_overlap_grid
    lo, hi = -size / 2, size / 2
    return np.stack([circular_overlap_grid(lo, hi, lo, hi, size, size, r, 1, 1).ravel()
                     for r in radii])


def growth_curve(stamp: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Encircled energy of a unit-sum ``stamp`` within circles of ``radii`` (pixels).

    Exact pixel/circle overlaps, centred on the central pixel; the total is the
    stamp sum, so values are fractions of the stamp's flux.
    """
    overlaps = _overlaps(stamp.shape[0], tuple(float(r) for r in radii))
    return overlaps @ stamp.ravel() / float(stamp.sum())


@dataclasses.dataclass(frozen=True)
class StampMetrics:
    """Shape figures of a PSF stamp (pixels; EE as fractions of the stamp sum)."""

    fwhm_pix: float
    moffat_beta: float
    centre_offset_pix: float
    ee_r50_pix: float
    ee_r80_pix: float
    ee_r90_pix: float
    ee_2fwhm: float
    radii: tuple[float, ...]
    ee: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class MoffatFit:
    """Pixel-integrated Moffat fitted to a stamp (stamp pixel coordinates)."""

    amplitude: float
    x0: float
    y0: float
    alpha: float
    beta: float

    @property
    def fwhm(self) -> float:
        """FWHM of the profile before pixel convolution, pixels."""
        return 2.0 * self.alpha * math.sqrt(2.0 ** (1.0 / self.beta) - 1.0)

    def render(self, size: int) -> np.ndarray:
        """The fitted model on a ``size x size`` stamp."""
        return self.amplitude * moffat_pixels(size, self.x0, self.y0, self.alpha, self.beta)


def fit_moffat(stamp: np.ndarray, fit_radius: float,
               start: tuple[float, float] | None = None) -> MoffatFit:
    """Fit a pixel-integrated Moffat to the pixels within ``fit_radius`` of the centre.

    Unweighted least squares (Levenberg-Marquardt with analytic derivatives,
    :func:`~phot7dt.pipelines.psf.arrow_lm.solve_arrow`) in amplitude, centre,
    ``log alpha`` and ``log(beta - 1)``, starting from the stamp's sum, its
    central pixel and ``start`` (``alpha`` in pixels, ``beta``; default
    :data:`START_ALPHA_BETA`).
    """
    size = stamp.shape[0]
    c = (size - 1) / 2
    lo, hi = int(max(c - fit_radius - 1, 0)), int(min(c + fit_radius + 2, size))
    idx = np.arange(lo, hi, dtype=float)
    xx, yy = np.meshgrid(idx, idx)
    inside = np.hypot(xx - c, yy - c) <= fit_radius
    xs, ys, data = xx[inside], yy[inside], stamp[lo:hi, lo:hi][inside]

    def evaluate(shared: np.ndarray, local: np.ndarray) -> Evaluation:
        amp, x0, y0 = local[0]
        d = moffat_integrated(xs - x0, ys - y0, math.exp(shared[0]), 1.0 + math.exp(shared[1]),
                              derivatives=True)
        return Evaluation((data - amp * d[0])[None], (amp * d[3:5].T)[None],
                          np.column_stack([d[0], amp * d[1], amp * d[2]])[None])

    alpha, beta = start or START_ALPHA_BETA
    free = (np.full(2, -np.inf), np.full(2, np.inf), np.full(3, -np.inf), np.full(3, np.inf))
    fit = solve_arrow(evaluate, np.array([math.log(alpha), math.log(beta - 1.0)]),
                      np.array([[float(stamp.sum()), c, c]]), free)
    if fit is None:
        raise ValueError("Moffat fit of a stamp with non-finite pixels")
    (amp, x0, y0), (log_alpha, log_beta_m1) = fit.local[0], fit.shared
    return MoffatFit(amp, x0, y0, math.exp(log_alpha), 1.0 + math.exp(log_beta_m1))


def model_wings(stamp: np.ndarray, fwhm_guess: float, snr_min: float = 3.0,
                start: tuple[float, float] | None = None):
    """Replace the noise-dominated wings of an ePSF by its fitted Moffat.

    The empirical stamp is kept where the fitted profile exceeds ``snr_min``
    times the stamp noise (robust scatter of stamp minus model beyond 2 FWHM),
    never inside 2 FWHM; outside, the model takes over through a 2-pixel
    linear taper. Summed wing noise otherwise sets the unit-sum normalisation
    (several per cent for faint PSF stars in a 55 px stamp). ``start``
    (``alpha`` in pixels, ``beta``) starts the Moffat fit (see :func:`fit_moffat`).

    Returns
    -------
    stamp : ndarray
        Unit-sum stamp with modelled wings.
    core_radius : float
        Radius (pixels) inside which the stamp is empirical.
    wing_fraction : float
        Fraction of the stamp's flux taken from the model.
    """
    size = stamp.shape[0]
    half = (size - 1) / 2
    fit = fit_moffat(stamp, min(half, max(3.0 * fwhm_guess, 6.0)), start)
    model = fit.render(size)
    yy, xx = np.indices(stamp.shape)
    r = np.hypot(xx - fit.x0, yy - fit.y0)
    outer = (r > 2.0 * fit.fwhm) & (r <= half)
    resid = (stamp - model)[outer]
    noise = float(mad_std(resid)) if resid.size else 0.0
    strong = r[(model >= snr_min * noise) & (r <= half)]
    core = float(np.clip(strong.max() if strong.size else 0.0, 2.0 * fit.fwhm, half))
    weight = np.clip((core + 1.0 - r) / 2.0, 0.0, 1.0)
    blended = weight * stamp + (1.0 - weight) * model
    blended /= blended.sum()
    return blended, core, float(((1.0 - weight) * blended).sum())


def _radius_at(fraction: float, radii: np.ndarray, ee: np.ndarray) -> float:
    above = np.nonzero(ee >= fraction)[0]
    if len(above) == 0:
        return float("nan")
    i = above[0]
    if i == 0:
        return float(radii[0])
    return float(np.interp(fraction, ee[i - 1 : i + 1], radii[i - 1 : i + 1]))


def measure_stamp(stamp: np.ndarray, fwhm_guess: float,
                  start: tuple[float, float] | None = None) -> StampMetrics:
    """FWHM (Moffat fit), growth curve and encircled-energy radii of a PSF stamp.

    ``start`` (``alpha`` in pixels, ``beta``) starts the Moffat fit (see :func:`fit_moffat`).
    """
    half = (stamp.shape[0] - 1) / 2
    fit = fit_moffat(stamp, min(half, max(3.0 * fwhm_guess, 6.0)), start)
    fwhm, beta = fit.fwhm, fit.beta
    offset = math.hypot(fit.x0 - half, fit.y0 - half)
    radii = np.arange(0.5, half + 0.25, 0.5)
    ee = growth_curve(stamp, radii)
    ee_2fwhm = float(growth_curve(stamp, np.array([min(2.0 * fwhm, half)]))[0])
    return StampMetrics(
        fwhm_pix=fwhm,
        moffat_beta=beta,
        centre_offset_pix=offset,
        ee_r50_pix=_radius_at(0.5, radii, ee),
        ee_r80_pix=_radius_at(0.8, radii, ee),
        ee_r90_pix=_radius_at(0.9, radii, ee),
        ee_2fwhm=ee_2fwhm,
        radii=tuple(float(r) for r in radii),
        ee=tuple(float(v) for v in ee),
    )
