"""Calibration nodes: zero points from GaiaXP stars, AB magnitudes for every source.

The fitted fluxes are on the nominal ``zp_ref`` scale. For a band whose true
zero point is ``zp_true`` and header zero point ``ZP_AUTO``, a star of AB
magnitude ``m`` has ``m + 2.5 log10 FLUX = zp_ref + zp_true - ZP_AUTO``; that
per-star zero point, robustly averaged over Gaia stars, is ``zp_median``, and
``MAG = zp_median - 2.5 log10 FLUX``. The statistics are in :mod:`.zeropoint`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from phot7dt.config import section
from phot7dt.config.ingest import PlottingParams
from phot7dt.config.zp import ZpParams
from phot7dt.frames import FrameSet
from phot7dt.plotting import Figure

from .bands import band_wavelength_nm
from .plots import zero_point_band_figure, zero_point_offset_figure
from .stars import calibration_stars
from .zeropoint import K_MAG, MIN_ZP_STARS, estimate_zero_point

logger = logging.getLogger(__name__)

#: Columns of ``zp_summary``, in order.
SUMMARY_COLUMNS = [
    "band", "wavelength_nm", "n_raw", "n_kept", "n_clipped", "n_nonconverged", "n_ambiguous",
    "n_saturated",
    "clip_sigma", "zp_median", "zp_err", "zp_err_method", "zp_err_mad", "zp_err_std",
    "n_zp_err_src", "zp_err_snr_used", "zp_scatter", "zp_scatter_intrinsic", "zp_ref",
    "zp_offset", "zp_auto", "reason",
]


def _band_summary(band: str, frames: FrameSet, params: ZpParams) -> dict[str, Any]:
    """A summary row with counts zero and every statistic NaN."""
    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS, math.nan)
    row.update(band=band, wavelength_nm=band_wavelength_nm(band), clip_sigma=params.clip_sigma,
               zp_err_method=params.zp_err_method, zp_ref=frames.zp_ref,
               zp_auto=frames.frame(band).zp_auto, reason="")
    for count in ("n_raw", "n_kept", "n_clipped", "n_nonconverged", "n_ambiguous", "n_saturated",
                  "n_zp_err_src"):
        row[count] = 0
    return row


def _calibrate_band(stars: pd.DataFrame, row: dict[str, Any], params: ZpParams) -> pd.DataFrame:
    """Fill ``row`` with the band's zero point; return ``stars`` with the clipping status."""
    usable = (stars["status"] == "candidate").to_numpy()
    row["n_nonconverged"] = int((stars["status"] == "nonconverged").sum())
    row["n_ambiguous"] = int((stars["status"] == "ambiguous").sum())
    row["n_saturated"] = int(stars["saturated_core"].sum())
    row["n_raw"] = int(usable.sum())
    estimate = estimate_zero_point(
        stars["zp_i"].to_numpy()[usable], stars["zp_i_err"].to_numpy()[usable],
        stars["snr"].to_numpy()[usable], clip_sigma=params.clip_sigma,
        clip_max_iters=params.clip_max_iters, err_method=params.zp_err_method,
        snr_min=params.zp_err_snr_min,
    )
    status = stars["status"].to_numpy(dtype=object, copy=True)
    status[np.flatnonzero(usable)] = np.where(estimate.kept, "kept", "clipped")
    stars = stars.assign(status=status)
    row["n_kept"] = int(estimate.kept.sum())
    row["n_clipped"] = row["n_raw"] - row["n_kept"]
    if math.isnan(estimate.zp):
        row["reason"] = (f"only {row['n_kept']} usable star(s) after clipping "
                         f"(need {MIN_ZP_STARS})")
        return stars
    row.update(
        zp_median=estimate.zp, zp_err=estimate.zp_err, zp_err_method=estimate.err_method_used,
        zp_err_mad=estimate.zp_err_mad, zp_err_std=estimate.zp_err_std,
        n_zp_err_src=estimate.n_zp_err_src, zp_err_snr_used=estimate.zp_err_snr_used,
        zp_scatter=estimate.scatter, zp_scatter_intrinsic=estimate.scatter_intrinsic,
        zp_offset=estimate.zp - row["zp_ref"],
    )
    return stars


def compute_zero_points(
    merged_catalog: pd.DataFrame,
    gaiaxp_synphot: pd.DataFrame,
    frames: FrameSet,
    zp: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-band zero points from Gaia-matched, reliably fitted stars.

    Args:
        merged_catalog: Fitted catalog (``ID``, ``gaia_source_id``, ``FLUX_{band}_fit``,
            ``FLUXERR_{band}_fit`` on the ``zp_ref`` scale, ``fit_is_reliable`` or
            ``opt_converged``, optionally ``excluded_any``).
        gaiaxp_synphot: GaiaXP synthetic photometry (``source_id``, ``mag_{band}`` AB mag).
        frames: The tile's frames (band order, ``zp_ref``, ``ZP_AUTO``).
        zp: ``params:zp``.

    Returns:
        ``zp_summary``: one row per band (:data:`SUMMARY_COLUMNS`); a band without a
        zero point has NaN statistics and says why in ``reason``.
        ``zp_per_object``: one row per Gaia star and band (``ID``, ``gaia_source_id``,
        ``band``, ``mag_gaia``, ``flux``, ``fluxerr``, ``snr``, ``zp_i``, ``zp_i_err``,
        ``status`` in kept | clipped | nonconverged | ambiguous | saturated,
        ``saturated_core`` (core saturated in the band: fitted from the wings; used
        only with ``zp.use_saturated``), ``is_kept``, ``is_clipped``).
    """
    params = section(ZpParams, zp, "zp")
    rows = [_band_summary(band, frames, params) for band in frames.bands]
    if not params.enabled:
        logger.info("zp.enabled is false: no zero points fitted; magnitudes use the nominal "
                    "zp_ref = %.3f of every band", frames.zp_ref)
        for row in rows:
            row.update(zp_median=frames.zp_ref, zp_offset=0.0,
                       reason="calibration disabled (zp.enabled: false): nominal zp_ref")
        return pd.DataFrame(rows, columns=SUMMARY_COLUMNS), _per_object_frame([])
    per_object = []
    for row in rows:
        band = row["band"]
        stars = calibration_stars(merged_catalog, gaiaxp_synphot, band, params.use_saturated)
        if stars is None:
            row["reason"] = f"gaiaxp_synphot has no column mag_{band}"
        else:
            per_object.append(_calibrate_band(stars, row, params))
        _log_band(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS), _per_object_frame(per_object)


def _per_object_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    columns = ["ID", "gaia_source_id", "band", "mag_gaia", "flux", "fluxerr", "snr", "zp_i",
               "zp_i_err", "status", "saturated_core"]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return table.assign(is_kept=table["status"] == "kept", is_clipped=table["status"] == "clipped")


def _log_band(row: dict[str, Any]) -> None:
    if row["reason"]:
        logger.warning("[%s] no zero point: %s", row["band"], row["reason"])
        return
    logger.info("[%s] ZP = %.4f +/- %.4f (offset from zp_ref %+.4f) | kept %d, clipped %d, "
                "non-converged %d, ambiguous %d, saturated core %d | scatter %.4f (intrinsic "
                "%.4f)", row["band"], row["zp_median"], row["zp_err"], row["zp_offset"],
                row["n_kept"], row["n_clipped"], row["n_nonconverged"], row["n_ambiguous"],
                row["n_saturated"], row["zp_scatter"], row["zp_scatter_intrinsic"])


def apply_zero_points(merged_catalog: pd.DataFrame, zp_summary: pd.DataFrame) -> pd.DataFrame:
    """Calibrated AB magnitudes of every source in every band of ``zp_summary``.

    ``MAG_{band}_fit = zp_median - 2.5 log10 FLUX_{band}_fit`` and
    ``MAGERR_{band}_fit = sqrt(((2.5 / ln 10) FLUXERR / FLUX)**2 + zp_err**2)``
    (mag). NaN where the flux is not positive, where the band has no zero point,
    and (for ``MAGERR``) where ``FLUXERR`` is not positive. A nominal zero point
    (calibration disabled) has no error, so ``MAGERR`` is the flux term alone.

    Args:
        merged_catalog: Fitted catalog with ``FLUX_{band}_fit``, ``FLUXERR_{band}_fit``.
        zp_summary: Output of :func:`compute_zero_points`.

    Returns:
        ``merged_catalog`` plus (or with replaced) ``MAG_{band}_fit``, ``MAGERR_{band}_fit``.
    """
    magnitudes: dict[str, np.ndarray] = {}
    for band, zp_median, zp_err in zp_summary[["band", "zp_median", "zp_err"]].itertuples(
        index=False
    ):
        flux = _numeric(merged_catalog, f"FLUX_{band}_fit")
        fluxerr = _numeric(merged_catalog, f"FLUXERR_{band}_fit")
        positive = np.isfinite(flux) & (flux > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = np.where(positive, zp_median - 2.5 * np.log10(flux), np.nan)
            flux_term = np.where(positive & (fluxerr > 0), K_MAG * fluxerr / flux, np.nan)
        zp_term = float(zp_err) if np.isfinite(zp_err) else 0.0
        magnitudes[f"MAG_{band}_fit"] = mag
        magnitudes[f"MAGERR_{band}_fit"] = np.where(np.isfinite(mag),
                                                    np.hypot(flux_term, zp_term), np.nan)
    calibrated = merged_catalog.drop(columns=[c for c in magnitudes if c in merged_catalog])
    calibrated = pd.concat([calibrated, pd.DataFrame(magnitudes, index=calibrated.index)], axis=1)
    logger.info("Calibrated magnitudes for %d sources in %d bands", len(calibrated),
                len(zp_summary))
    return calibrated


def _numeric(table: pd.DataFrame, column: str) -> np.ndarray:
    if column not in table:
        raise ValueError(f"merged_catalog: missing column {column!r} (fitted flux of the band)")
    return pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)


def plot_zero_points(
    zp_per_object: pd.DataFrame, zp_summary: pd.DataFrame, zp: dict[str, Any],
    plotting: dict[str, Any],
) -> dict[str, Figure]:
    """ZP versus Gaia magnitude per band, a constrained and a full-range view.

    The constrained view spans ``zp.plot_mag_lo``..``zp.plot_mag_hi`` in
    magnitude and ``zp_median ± zp.plot_zp_offset`` in zero point (its title counts
    the stars off the axes); ``plotting.detail: summary`` draws only this view.

    Returns:
        ``{"zp_vs_mag__<band>.png": Figure, "zp_vs_mag_full__<band>.png": Figure}``
        for every band with calibration stars (the second under ``detail: full``).
    """
    params = section(ZpParams, zp, "zp")
    full = section(PlottingParams, plotting, "plotting").detail == "full"
    mag_range = (params.plot_mag_lo, params.plot_mag_hi)
    figures: dict[str, Figure] = {}
    summary = zp_summary.assign(reason=zp_summary["reason"].fillna("").astype(str))
    for row in summary.to_dict("records"):
        stars = zp_per_object[zp_per_object["band"] == row["band"]]
        if stars.empty:
            continue
        figures[f"zp_vs_mag__{row['band']}.png"] = zero_point_band_figure(
            stars, row, mag_range=mag_range, zp_half_range=params.plot_zp_offset)
        if full:
            figures[f"zp_vs_mag_full__{row['band']}.png"] = zero_point_band_figure(stars, row)
    logger.info("Zero-point plots: %d figure(s)", len(figures))
    return figures


def plot_zero_point_offsets(zp_summary: pd.DataFrame) -> Figure:
    """``zp_median - zp_ref`` with error bars versus band wavelength."""
    return zero_point_offset_figure(zp_summary)
