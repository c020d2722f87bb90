"""Nodes of the validate pipeline: the final catalog against the simulator's truth.

The truth (``truth.csv``, ``truth_bands.csv``) exists only for simulated fields;
on a real tile both load as None and the pipeline writes a JSON that says so,
with the catalog-only numbers (counts, converged fraction).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from phot7dt.catalog_columns import catalog_summary, fitted_bands
from phot7dt.config import section
from phot7dt.config.validate import ValidateParams
from phot7dt.frames import FrameSet
from phot7dt.json_values import json_safe
from phot7dt.pipelines.validate.matching import (
    FLUX_COLUMNS,
    SOURCE_COLUMNS,
    flux_table,
    source_table,
)
from phot7dt.pipelines.validate.metrics import (
    CLASSES,
    difference_statistics,
    flux_recovery,
    flux_statistics,
    offset_statistics,
)

logger = logging.getLogger(__name__)

TRUTH_REQUIRED = ("ID", "TYPE", "role", "in_catalog", "x_pix", "y_pix")
#: A truth whose matched sources lie further than this from their fits (median, px) is
#: not the truth of this field (e.g. a stale sample tile beside a real run).
SAME_FIELD_MAX_OFFSET_PIX = 2.0


def _require(table: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; expected the simulator's {what}")


def match_truth(
    output_catalog: pd.DataFrame,
    validation_truth: pd.DataFrame | None,
    frames: FrameSet,
    validate: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Match every truth source to its catalog row (``ID``; injected Gaia stars by source id).

    Returns
    -------
    validation_sources : DataFrame
        One row per truth source (``in_output`` says whether the catalog has it),
        working-frame true/fitted positions (px), shapes, per-band fluxes.
    validation_fluxes : DataFrame
        One row per usable (source, band): true and fitted flux (common scale),
        fitted error, ``snr_true``.
    """
    params = section(ValidateParams, validate, "validate")
    if validation_truth is None:
        logger.info("validate: no truth.csv for this field; writing catalog-only numbers")
        return pd.DataFrame(columns=SOURCE_COLUMNS), pd.DataFrame(columns=FLUX_COLUMNS)
    _require(validation_truth, TRUTH_REQUIRED, "truth.csv")
    _require(output_catalog, ("ID",), "output_catalog")
    sources = source_table(output_catalog, validation_truth, (frames.crop.x0, frames.crop.y0))
    fluxes = flux_table(sources, fitted_bands(output_catalog), params.require_converged)
    listed = sources["in_catalog"]
    logger.info(
        "validate: %d of %d listed truth sources found in the catalog",
        int((listed & sources["in_output"]).sum()),
        int(listed.sum()),
    )
    return sources, fluxes



def _matching(sources: pd.DataFrame, max_listed: int) -> dict[str, Any]:
    listed = sources["in_catalog"].astype(bool)
    missing = sources.loc[listed & ~sources["in_output"], "ID"].astype(str).tolist()
    offset = np.hypot(sources["dx"].astype(float), sources["dy"].astype(float))
    median_offset = float(np.nanmedian(offset)) if np.isfinite(offset).any() else math.nan
    same_field = bool(median_offset <= SAME_FIELD_MAX_OFFSET_PIX)
    if not same_field:
        logger.warning(
            "validate: matched sources lie a median %.1f px from their truth position; "
            "truth.csv seems to describe another field (stale sample_dir?)",
            median_offset,
        )
    return {
        "n_truth": len(sources),
        "n_truth_listed": int(listed.sum()),
        "n_matched": int(sources["in_output"].sum()),
        "n_missing": len(missing),
        "missing_ids": missing[:max_listed],
        "median_offset_pix": median_offset,
        "truth_matches_field": same_field,
    }


def _positions(sources: pd.DataFrame) -> dict[str, Any]:
    used = sources[sources["in_output"] & ~sources["excluded"]]
    return {
        cls: offset_statistics(rows["dx"], rows["dy"])
        for cls in CLASSES
        for rows in [used[used["source_class"] == cls]]
    }


def _shapes(sources: pd.DataFrame, theta_min_ell: float) -> dict[str, Any]:
    gal = sources[
        sources["in_output"] & ~sources["excluded"] & (sources["source_class"] == "galaxy")
    ]
    elongated = gal[gal["ell_true"] >= theta_min_ell]
    return {
        "re_ratio_minus_1": difference_statistics(gal["re_fit"] / gal["re_true"] - 1.0),
        "ell_difference": difference_statistics(gal["ell_fit"] - gal["ell_true"]),
        "theta_difference_deg": difference_statistics(elongated["dtheta"]),
    }


def zero_point_recovery(
    zp_summary: pd.DataFrame | None, truth_bands: pd.DataFrame | None
) -> list[dict[str, Any]]:
    """Per band: measured ``zp_median - zp_ref`` against the true ``zp_true - zp_auto`` (mag)."""
    if zp_summary is None or truth_bands is None or zp_summary.empty:
        return []
    truth = truth_bands[["band", "zp_true", "zp_auto"]].rename(
        columns={"zp_true": "zp_true_truth", "zp_auto": "zp_auto_truth"}
    )
    merged = zp_summary.merge(truth.astype({"band": str}), on="band")
    rows = []
    for row in merged.itertuples():
        measured = float(row.zp_median) - float(row.zp_ref)
        true = float(row.zp_true_truth) - float(row.zp_auto_truth)
        rows.append(
            {
                "band": row.band,
                "wavelength_nm": float(row.wavelength_nm),
                "zp_offset_measured": measured,
                "zp_offset_true": true,
                "zp_error": measured - true,
                "zp_err": float(row.zp_err),
                "n_stars": int(row.n_kept),
            }
        )
    return rows


def _headline(fluxes: pd.DataFrame, zps: list[dict], catalog: dict, params: ValidateParams) -> dict:
    stars = fluxes[fluxes["source_class"] == "star"]
    pulls = flux_statistics(stars["flux_fit"], stars["fluxerr_fit"], stars["flux_true"])
    bright = stars[stars["snr_true"] > params.headline_snr_min]
    biases = [
        flux_statistics(r["flux_fit"], r["fluxerr_fit"], r["flux_true"], params.min_per_bin)["bias"]
        for _, r in bright.groupby("band")
    ]
    biases = np.abs([b for b in biases if math.isfinite(b)])
    errors = np.abs([z["zp_error"] for z in zps if math.isfinite(z["zp_error"])])
    return {
        "star_pull_std": pulls["pull_std"],
        "star_pull_robust_std": pulls["pull_robust_std"],
        "star_median_abs_bias_snr_gt": float(np.median(biases)) if biases.size else math.nan,
        "headline_snr_min": params.headline_snr_min,
        "max_abs_zp_error_mag": float(errors.max()) if errors.size else math.nan,
        "fraction_converged": catalog["fraction_converged"],
    }


def compute_validation_metrics(
    validation_sources: pd.DataFrame,
    validation_fluxes: pd.DataFrame,
    output_catalog: pd.DataFrame,
    zp_summary: pd.DataFrame | None,
    validation_truth_bands: pd.DataFrame | None,
    catalog_provenance: dict[str, Any] | None,
    validate: dict[str, Any],
) -> dict[str, Any]:
    """The validation JSON: headline numbers on top, then per-band, per-class details.

    ``catalog_utc`` names the catalog validated (its provenance's write time), so the
    report shows the validation only beside that catalog.

    Flux statistics are relative (``(fit - true) / true``) and pulls are
    ``(fit - true) / FLUXERR``; positions in working-frame pixels; ZP in mag.
    """
    params = section(ValidateParams, validate, "validate")
    catalog = catalog_summary(output_catalog)
    catalog_utc = (catalog_provenance or {}).get("catalog_utc")
    if validation_sources.empty:
        logger.info("validate: no truth; validation.json holds the catalog summary only")
        return json_safe(
            {
                "truth_available": False,
                "catalog_utc": catalog_utc,
                "headline": {"fraction_converged": catalog["fraction_converged"]},
                "catalog": catalog,
            }
        )
    fluxes = validation_fluxes.astype(
        {"snr_true": float, "flux_fit": float, "fluxerr_fit": float, "flux_true": float}
    )
    zps = zero_point_recovery(zp_summary, validation_truth_bands)
    result = {
        "truth_available": True,
        "catalog_utc": catalog_utc,
        "headline": _headline(fluxes, zps, catalog, params),
        "catalog": catalog,
        "matching": _matching(validation_sources, params.max_listed_missing),
        "pulls_all_bands": {
            cls: flux_statistics(r["flux_fit"], r["fluxerr_fit"], r["flux_true"])
            for cls in CLASSES
            for r in [fluxes[fluxes["source_class"] == cls]]
        },
        "flux": flux_recovery(fluxes, params.snr_bin_edges, params.min_per_bin),
        "positions_pix": _positions(validation_sources),
        "shapes": _shapes(validation_sources, params.theta_min_ell),
        "zero_points": zps,
    }
    head = result["headline"]
    logger.info(
        "validate: star pull std %.2f (robust %.2f), median |bias| %.4f at S/N > %g, "
        "max |ZP error| %.4f mag, converged %.3f",
        head["star_pull_std"],
        head["star_pull_robust_std"],
        head["star_median_abs_bias_snr_gt"],
        params.headline_snr_min,
        head["max_abs_zp_error_mag"],
        head["fraction_converged"],
    )
    return json_safe(result)
