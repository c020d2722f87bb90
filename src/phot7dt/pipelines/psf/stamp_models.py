"""Analytic PSF stamps and measurements of PSF stamps.

Stamps sample the *pixel-convolved* profile at pixel centres (each pixel holds
the profile integrated over it), the convention of an ePSF. Measurements fit
the same pixel-integrated Moffat, so the FWHM they report is the FWHM of the
profile before pixel convolution, comparable with a seeing FWHM.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from photutils.aperture import CircularAperture
from scipy.optimize import least_squares

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

#: Sub-pixels per axis used to integrate a profile over a pixel.
SUBSAMPLE = 7
#: (sigma multiples, weights) of tract7dt's NCircularGaussianPSF fallback by number of components.
NCIRCULAR_COMPONENTS = {
    1: ((1.0,), (1.0,)),
    2: ((1.0, 2.5), (0.85, 0.15)),
    3: ((1.0, 2.0, 4.0), (0.8, 0.15, 0.05)),
}
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def moffat_alpha(fwhm: float, beta: float) -> float:
    """Moffat core radius ``alpha`` (pixels) of a profile with ``fwhm`` and ``beta``."""
    return fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def _subpixel_grid(size: int, x0: float, y0: float) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel offsets from ``(x0, y0)``, shape ``(size, size, S, S)``."""
    idx = np.arange(size, dtype=float)
    return _window_offsets(idx, idx, x0, y0)


def _window_offsets(rows: np.ndarray, cols: np.ndarray, x0: float, y0: float):
    """Sub-pixel offsets from ``(x0, y0)`` of the pixels ``rows x cols``: ``(R, C, S, S)``."""
    offsets = (np.arange(SUBSAMPLE) + 0.5) / SUBSAMPLE - 0.5
    dx = cols[None, :, None, None] + offsets[None, None, None, :] - x0
    dy = rows[:, None, None, None] + offsets[None, None, :, None] - y0
    return dx, dy


def moffat_pixels(size: int, x0: float, y0: float, alpha: float, beta: float) -> np.ndarray:
    """Unit-flux Moffat integrated over the pixels of a ``size x size`` grid, centre ``(x0, y0)``."""
    idx = np.arange(size, dtype=float)
    return moffat_window(idx, idx, x0, y0, alpha, beta)


def moffat_window(rows: np.ndarray, cols: np.ndarray, x0: float, y0: float, alpha: float,
                  beta: float) -> np.ndarray:
    """:func:`moffat_pixels` on the pixels ``rows x cols`` only (float pixel indices)."""
    dx, dy = _window_offsets(rows, cols, x0, y0)
    profile = (1.0 + (dx**2 + dy**2) / alpha**2) ** (-beta)
    return profile.mean(axis=(2, 3)) * (beta - 1.0) / (math.pi * alpha**2)


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
    dx, dy = _subpixel_grid(size, c, c)
    r2 = dx**2 + dy**2
    sigma = fwhm / FWHM_PER_SIGMA
    scales, weights = NCIRCULAR_COMPONENTS[n]
    profile = sum(
        w * np.exp(-0.5 * r2 / (k * sigma) ** 2) / (2 * math.pi * (k * sigma) ** 2)
        for k, w in zip(scales, weights, strict=True)
    )
    stamp = profile.mean(axis=(2, 3))
    return stamp / stamp.sum()


def gaussian_stamp(fwhm: float, radius: float) -> np.ndarray:
    """Unit-sum pixel-integrated circular Gaussian stamp."""
    return ncircular_gaussian_stamp(fwhm, 1, radius)


def growth_curve(stamp: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Encircled energy of a unit-sum ``stamp`` within circles of ``radii`` (pixels).

    Exact pixel/circle overlaps, centred on the central pixel; the total is the
    stamp sum, so values are fractions of the stamp's flux.
    """
    c = (stamp.shape[0] - 1) / 2
    total = float(stamp.sum())
    flux = [
        CircularAperture((c, c), float(r)).do_photometry(stamp, method="exact")[0][0]
        for r in radii
    ]
    return np.asarray(flux) / total


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


def fit_moffat(stamp: np.ndarray, fit_radius: float) -> MoffatFit:
    """Fit a pixel-integrated Moffat to the pixels within ``fit_radius`` of the centre."""
    size = stamp.shape[0]
    c = (size - 1) / 2
    yy, xx = np.indices(stamp.shape)
    inside = np.hypot(xx - c, yy - c) <= fit_radius
    lo, hi = int(max(c - fit_radius - 1, 0)), int(min(c + fit_radius + 2, size))
    sub, sub_inside = stamp[lo:hi, lo:hi], inside[lo:hi, lo:hi]
    n = hi - lo

    def residual(p: np.ndarray) -> np.ndarray:
        amp, x0, y0, log_alpha, log_beta_m1 = p
        model = amp * moffat_pixels(n, x0, y0, math.exp(log_alpha), 1.0 + math.exp(log_beta_m1))
        return (model - sub)[sub_inside]

    start = np.array([float(stamp.sum()), c - lo, c - lo, math.log(2.0), math.log(2.0)])
    fit = least_squares(residual, start, method="lm", x_scale="jac")
    amp, x0, y0, log_alpha, log_beta_m1 = fit.x
    return MoffatFit(amp, x0 + lo, y0 + lo, math.exp(log_alpha), 1.0 + math.exp(log_beta_m1))


def model_wings(stamp: np.ndarray, fwhm_guess: float, snr_min: float = 3.0):
    """Replace the noise-dominated wings of an ePSF by its fitted Moffat.

    The empirical stamp is kept where the fitted profile exceeds ``snr_min``
    times the stamp noise (robust scatter of stamp minus model beyond 2 FWHM),
    never inside 2 FWHM; outside, the model takes over through a 2-pixel
    linear taper. Summed wing noise otherwise sets the unit-sum normalisation
    (several per cent for faint PSF stars in a 55 px stamp).

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
    fit = fit_moffat(stamp, min(half, max(3.0 * fwhm_guess, 6.0)))
    model = fit.render(size)
    yy, xx = np.indices(stamp.shape)
    r = np.hypot(xx - fit.x0, yy - fit.y0)
    outer = (r > 2.0 * fit.fwhm) & (r <= half)
    resid = (stamp - model)[outer]
    noise = 1.4826 * float(np.median(np.abs(resid - np.median(resid)))) if resid.size else 0.0
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


def measure_stamp(stamp: np.ndarray, fwhm_guess: float) -> StampMetrics:
    """FWHM (Moffat fit), growth curve and encircled-energy radii of a PSF stamp."""
    half = (stamp.shape[0] - 1) / 2
    fit = fit_moffat(stamp, min(half, max(3.0 * fwhm_guess, 6.0)))
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
