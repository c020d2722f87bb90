"""Statistics of fitted versus true values: bias, robust scatter, pulls, in S/N bins.

Every function takes plain arrays or the long flux table of
:func:`phot7dt.pipelines.validate.matching.flux_table` and returns JSON-ready
dicts (NaN for "not measured"; :func:`json_safe` turns it into ``null``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from astropy.stats import mad_std

#: Source classes compared separately.
CLASSES = ("star", "galaxy")


def robust_sigma(values: np.ndarray) -> float:
    """Gaussian-equivalent MAD (:func:`astropy.stats.mad_std`) of the finite values (NaN for
    fewer than 2)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return math.nan
    return float(mad_std(v))


def flux_statistics(fit: np.ndarray, err: np.ndarray, true: np.ndarray, min_n: int = 1) -> dict:
    """Flux recovery of a set of measurements (same units for the three arrays).

    Returns
    -------
    dict
        ``n``; ``bias`` = median of ``(fit - true) / true``; ``scatter`` = its
        robust sigma; ``pull_std`` and ``pull_robust_std`` = standard deviation
        and robust sigma of ``(fit - true) / err``; ``pull_median``. Statistics
        are NaN when ``n < min_n``.
    """
    fit, err, true = (np.asarray(a, float) for a in (fit, err, true))
    ok = np.isfinite(fit) & np.isfinite(err) & (err > 0) & np.isfinite(true) & (true > 0)
    rel = (fit[ok] - true[ok]) / true[ok]
    pull = (fit[ok] - true[ok]) / err[ok]
    n = int(ok.sum())
    stats = {
        "n": n,
        "bias": math.nan,
        "scatter": math.nan,
        "pull_median": math.nan,
        "pull_std": math.nan,
        "pull_robust_std": math.nan,
    }
    if n < max(min_n, 1):
        return stats
    stats.update(
        bias=float(np.median(rel)),
        scatter=robust_sigma(rel),
        pull_median=float(np.median(pull)),
        pull_std=float(np.std(pull, ddof=1)) if n > 1 else math.nan,
        pull_robust_std=robust_sigma(pull),
    )
    return stats


def _stats_of(rows: pd.DataFrame, min_n: int) -> dict:
    return flux_statistics(rows["flux_fit"], rows["fluxerr_fit"], rows["flux_true"], min_n)


def binned_flux_statistics(
    fluxes: pd.DataFrame, edges: Sequence[float], min_n: int
) -> list[dict[str, Any]]:
    """:func:`flux_statistics` in S/N bins ``[edges[i], edges[i+1])`` (``snr_true`` column)."""
    out = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        rows = fluxes[(fluxes["snr_true"] >= low) & (fluxes["snr_true"] < high)]
        out.append({"snr_min": float(low), "snr_max": float(high), **_stats_of(rows, min_n)})
    return out


def flux_recovery(fluxes: pd.DataFrame, edges: Sequence[float], min_n: int) -> dict[str, Any]:
    """Per band and class: overall and S/N-binned :func:`flux_statistics`."""
    result: dict[str, Any] = {}
    for band, per_band in fluxes.groupby("band", sort=False):
        result[str(band)] = {
            cls: {
                "all": _stats_of(rows, min_n),
                "snr_bins": binned_flux_statistics(rows, edges, min_n),
            }
            for cls in CLASSES
            for rows in [per_band[per_band["source_class"] == cls]]
        }
    return result


def wrap_angle_deg(delta: np.ndarray) -> np.ndarray:
    """Position-angle differences folded into ``[-90, 90)`` degrees (axes have period 180)."""
    return np.mod(np.asarray(delta, float) + 90.0, 180.0) - 90.0


def offset_statistics(dx: np.ndarray, dy: np.ndarray) -> dict[str, float]:
    """Median and robust sigma of position offsets (px), and their count."""
    dx, dy = np.asarray(dx, float), np.asarray(dy, float)
    ok = np.isfinite(dx) & np.isfinite(dy)
    if not ok.any():
        return {
            "n": 0,
            "dx_median": math.nan,
            "dy_median": math.nan,
            "dx_robust_std": math.nan,
            "dy_robust_std": math.nan,
            "r_median": math.nan,
        }
    return {
        "n": int(ok.sum()),
        "dx_median": float(np.median(dx[ok])),
        "dy_median": float(np.median(dy[ok])),
        "dx_robust_std": robust_sigma(dx[ok]),
        "dy_robust_std": robust_sigma(dy[ok]),
        "r_median": float(np.median(np.hypot(dx[ok], dy[ok]))),
    }


def difference_statistics(values: np.ndarray) -> dict[str, float]:
    """Count, median and robust sigma of finite differences."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    median = float(np.median(v)) if v.size else math.nan
    return {"n": int(v.size), "median": median, "robust_std": robust_sigma(v)}
