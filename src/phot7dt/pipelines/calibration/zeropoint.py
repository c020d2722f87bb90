"""Statistics of one band's zero point from per-star zero points.

The per-star zero point of a calibration star is ``z_i = m_Gaia + 2.5 log10 F_i``
with measurement error ``s_i = (2.5 / ln 10) FLUXERR_i / F_i`` (mag). Real stars
scatter more than ``s_i`` says (GaiaXP synthetic-photometry errors, colour
terms, unmodelled neighbours), so each star's variance is modelled as
``v_i = s_i**2 + sigma_int**2`` with one extra scatter ``sigma_int`` per band,
estimated robustly from the stars themselves. With ``sigma_int = 0`` every
rule below reduces to tract7dt's.

- Clipping: iterative MAD clipping of the normalised residuals
  ``(z_i - median) / sqrt(v_i)``, with ``sigma_int`` set so that their median
  absolute value is 0.6745; stars beyond ``clip_sigma`` robust sigmas are
  dropped (and may come back in a later iteration, as in tract7dt).
- Zero point: weighted median of the kept stars with weights ``1 / v_i``.
- Error (``zp_err``): the standard error of that weighted median,
  ``sqrt(pi / 2 * sum v_i**-2) / sum v_i**-1.5`` (asymptotic; ``1.2533 sigma /
  sqrt(N)`` for equal errors) widened by ``n_eff / (n_eff - 2)`` for the
  estimated scatter. ``sigma_int`` in ``v_i`` comes from ``zp_err_method``:
  ``all_mad`` fits it to all kept stars (restricted maximum likelihood),
  ``bright_std`` takes the standard deviation of the high-S/N kept stars
  (S/N thresholds ``snr_min``, ``snr_min / 2``, ``snr_min / 4``, at least
  :data:`MIN_BRIGHT_STARS` stars, else ``all_mad``) less their mean variance.
- tract7dt's raw error columns are kept as diagnostics: ``zp_err_mad``
  (``median |z_i - zp|``) and ``zp_err_std`` (std of the bright stars).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

#: 2.5 / ln 10: magnitude error per unit relative flux error.
K_MAG = 2.5 / math.log(10.0)
#: Median of |x| for a unit normal x.
HALF_NORMAL_MEDIAN = 0.6744897501960817
#: Gaussian sigma per median absolute deviation about the zero point (as astropy's mad_std).
MAD_TO_SIGMA = 1.0 / HALF_NORMAL_MEDIAN
#: Fewest kept stars that give a zero point.
MIN_ZP_STARS = 3
#: Fewest stars ``bright_std`` accepts at an S/N threshold (tract7dt's 10).
MIN_BRIGHT_STARS = 10


@dataclasses.dataclass(frozen=True)
class ZeroPointEstimate:
    """One band's zero point from its calibration stars.

    Attributes
    ----------
    zp : float
        Weighted median zero point (mag); NaN when too few stars remain.
    zp_err : float
        Standard error of ``zp`` (mag), see the module docstring.
    kept : (n,) bool ndarray
        Stars that survived clipping.
    scatter : float
        ``1.4826 * MAD`` of the kept per-star zero points about ``zp`` (mag).
    scatter_intrinsic : float
        ``sigma_int`` used in the weights and the error (mag).
    err_method_used : str
        ``all_mad``, ``bright_std``, or ``all_mad (fallback)``.
    zp_err_mad : float
        tract7dt's ``all_mad`` error: raw ``median |z_i - zp|`` of kept stars.
    zp_err_std : float
        tract7dt's ``bright_std`` error: std of the bright kept stars (NaN if too few).
    n_zp_err_src : int
        Stars behind ``zp_err_std`` (or all kept stars when it fell back).
    zp_err_snr_used : float
        S/N threshold at which ``bright_std`` found enough stars (NaN if none).
    """

    zp: float
    zp_err: float
    kept: np.ndarray
    scatter: float
    scatter_intrinsic: float
    err_method_used: str
    zp_err_mad: float
    zp_err_std: float
    n_zp_err_src: int
    zp_err_snr_used: float


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """First sorted value at or past half of the cumulative weight (tract7dt's rule)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, 0.5 * cumulative[-1]))
    return float(values[order][min(index, len(values) - 1)])


def intrinsic_scatter(residuals: np.ndarray, sigma: np.ndarray) -> float:
    """Extra scatter ``s >= 0`` with ``median |r| / sqrt(sigma**2 + s**2) = 0.6745``.

    Zero when the measurement errors alone already explain the scatter.
    """
    from scipy.optimize import brentq
    abs_res = np.abs(residuals)

    def excess(s: float) -> float:
        return float(np.median(abs_res / np.sqrt(sigma**2 + s**2))) - HALF_NORMAL_MEDIAN

    if len(abs_res) == 0 or excess(0.0) <= 0.0:
        return 0.0
    upper = 10.0 * float(np.max(abs_res)) + 1e-6
    return float(brentq(excess, 0.0, upper, xtol=1e-7))


def reml_intrinsic_scatter(values: np.ndarray, sigma: np.ndarray) -> float:
    """Restricted maximum-likelihood extra scatter of Gaussian values about a common mean.

    Uses every star's error (unlike the median rule of :func:`intrinsic_scatter`),
    so the bright stars that carry the zero point also set ``sigma_int``; the
    REML term removes most of the small-sample bias of plain maximum likelihood.
    Meant for clipped samples.
    """
    from scipy.optimize import minimize_scalar

    def neg_log_likelihood(s: float) -> float:
        weights = 1.0 / (sigma**2 + s**2)
        mean = np.sum(weights * values) / np.sum(weights)
        return 0.5 * float(np.sum(weights * (values - mean) ** 2 - np.log(weights))
                           + np.log(np.sum(weights)))

    upper = 3.0 * float(np.std(values)) + 1e-6
    best = minimize_scalar(neg_log_likelihood, bounds=(0.0, upper), method="bounded",
                           options={"xatol": 1e-6})
    return float(best.x) if best.fun < neg_log_likelihood(0.0) else 0.0


def weighted_median_error(variances: np.ndarray) -> float:
    """Standard error of the ``1/v``-weighted median of Gaussian values.

    Asymptotic variance ``(pi / 2) sum v**-2 / (sum v**-1.5)**2``, widened by
    ``n_eff / (n_eff - 2)`` (``n_eff = (sum w)**2 / sum w**2``), the Student-t
    variance factor for a scatter estimated from the same ``n_eff`` stars.
    """
    weights = 1.0 / variances
    n_eff = float(np.sum(weights) ** 2 / np.sum(weights**2))
    asymptotic = 0.5 * math.pi * np.sum(variances**-2.0) / np.sum(variances**-1.5) ** 2
    return float(math.sqrt(asymptotic * n_eff / max(n_eff - 2.0, 1.0)))


def clip_stars(
    zp_i: np.ndarray, sigma_i: np.ndarray, clip_sigma: float, max_iters: int
) -> np.ndarray:
    """Iterative MAD clipping of normalised residuals; returns the kept mask.

    Each iteration takes the median of the kept stars, calibrates ``sigma_int``
    on them, and keeps every star within ``clip_sigma`` robust sigmas of the
    normalised residuals. Stops when the kept set no longer changes or fewer
    than three stars remain.
    """
    kept = np.ones(len(zp_i), bool)
    for _ in range(max_iters):
        if kept.sum() < 3:
            break
        residuals = zp_i - np.median(zp_i[kept])
        s_int = intrinsic_scatter(residuals[kept], sigma_i[kept])
        normalised = residuals / np.sqrt(sigma_i**2 + s_int**2)
        robust_sigma = MAD_TO_SIGMA * float(np.median(np.abs(normalised[kept])))
        if robust_sigma <= 0.0:
            break
        new_kept = np.abs(normalised) <= clip_sigma * robust_sigma
        if np.array_equal(new_kept, kept):
            break
        kept = new_kept
    return kept


def _bright_std(
    zp_i: np.ndarray, sigma_i: np.ndarray, snr: np.ndarray, snr_min: float
) -> tuple[float, float, int, float]:
    """(std, sigma_int, n stars, S/N threshold) of the brightest usable set, NaNs if none."""
    for threshold in (snr_min, snr_min / 2.0, snr_min / 4.0):
        bright = snr >= threshold
        if bright.sum() >= MIN_BRIGHT_STARS:
            std = float(np.std(zp_i[bright], ddof=1))
            excess = std**2 - float(np.mean(sigma_i[bright] ** 2))
            return std, math.sqrt(max(excess, 0.0)), int(bright.sum()), threshold
    return math.nan, math.nan, 0, math.nan


def estimate_zero_point(
    zp_i: np.ndarray,
    sigma_i: np.ndarray,
    snr: np.ndarray,
    *,
    clip_sigma: float,
    clip_max_iters: int,
    err_method: str,
    snr_min: float,
) -> ZeroPointEstimate:
    """Zero point, its error and tract7dt's diagnostics for one band.

    Parameters
    ----------
    zp_i, sigma_i, snr : (n,) float ndarray
        Per-star zero points (mag), their measurement errors (mag, > 0) and
        flux S/N of the usable calibration stars.
    clip_sigma, clip_max_iters : float, int
        Clipping threshold (robust sigmas) and iteration limit.
    err_method : {"all_mad", "bright_std"}
        How ``sigma_int`` of the error is estimated.
    snr_min : float
        First S/N threshold of ``bright_std``.
    """
    kept = clip_stars(zp_i, sigma_i, clip_sigma, clip_max_iters)
    if kept.sum() < MIN_ZP_STARS:
        return ZeroPointEstimate(math.nan, math.nan, kept, math.nan, math.nan, err_method,
                                 math.nan, math.nan, 0, math.nan)
    z, s = zp_i[kept], sigma_i[kept]
    s_int = intrinsic_scatter(z - np.median(z), s)
    zp = weighted_median(z, 1.0 / (s**2 + s_int**2))
    s_int_all = reml_intrinsic_scatter(z, s)
    std, s_int_bright, n_bright, snr_used = _bright_std(z, s, snr[kept], snr_min)
    if err_method == "bright_std" and n_bright:
        method, s_err, n_src = "bright_std", s_int_bright, n_bright
    else:
        method = "all_mad" if err_method == "all_mad" else "all_mad (fallback)"
        s_err, n_src = s_int_all, int(kept.sum())
    variances = s**2 + s_err**2
    zp = weighted_median(z, 1.0 / variances)
    return ZeroPointEstimate(
        zp=zp,
        zp_err=weighted_median_error(variances),
        kept=kept,
        scatter=MAD_TO_SIGMA * float(np.median(np.abs(z - zp))),
        scatter_intrinsic=s_err,
        err_method_used=method,
        zp_err_mad=float(np.median(np.abs(z - zp))),
        zp_err_std=std,
        n_zp_err_src=n_src,
        zp_err_snr_used=snr_used,
    )
