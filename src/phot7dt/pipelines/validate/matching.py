"""Joining the final catalog with the simulator's truth: one table per source, one per band.

Truth positions (``x_pix``, ``y_pix``) are 0-based pixels of the original
images; the catalog's are in the working frame, so the crop origin is
subtracted from the truth before offsets are taken.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from phot7dt.catalog_columns import as_bool, fitted_bands, numeric_column
from phot7dt.pipelines.validate.metrics import wrap_angle_deg

SOURCE_COLUMNS = [
    "ID",
    "TYPE",
    "source_class",
    "role",
    "in_catalog",
    "in_output",
    "excluded",
    "fit_status",
    "converged",
    "x_true",
    "y_true",
    "x_fit",
    "y_fit",
    "dx",
    "dy",
    "snr_best",
    "re_true",
    "ell_true",
    "theta_true",
    "re_fit",
    "ell_fit",
    "theta_fit",
    "dtheta",
]
FLUX_COLUMNS = [
    "ID",
    "band",
    "source_class",
    "role",
    "mag_true",
    "flux_true",
    "flux_fit",
    "fluxerr_fit",
    "snr_true",
    "converged",
]





def truth_keys(catalog: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """The truth ``ID`` of every catalog row (``ID``; injected Gaia stars by ``gaia_source_id``)."""
    keys = catalog["ID"].astype(str)
    known = set(truth["ID"].astype(str))
    if "gaia_source_id" in catalog.columns and "gaia_source_id" in truth.columns:
        gaia = truth.dropna(subset=["gaia_source_id"])
        by_gaia = dict(zip(gaia["gaia_source_id"].astype(str), gaia["ID"].astype(str), strict=True))
        unknown = ~keys.isin(known)
        keys = keys.where(~unknown, catalog["gaia_source_id"].astype(str).map(by_gaia))
    return keys


def _fit_part(catalog: pd.DataFrame, truth: pd.DataFrame, bands: list[str]) -> pd.DataFrame:
    keyed = catalog.assign(_truth_id=truth_keys(catalog, truth).to_numpy())
    keyed = keyed.dropna(subset=["_truth_id"]).drop_duplicates("_truth_id")
    part = pd.DataFrame(
        {
            "ID": keyed["_truth_id"].to_numpy(str),
            "in_output": True,
            "excluded": as_bool(keyed["excluded_any"]) if "excluded_any" in keyed else False,
            "fit_status": keyed.get("fit_status", pd.Series("", index=keyed.index))
            .astype(str)
            .to_numpy(),
            "converged": as_bool(keyed["opt_converged"]) if "opt_converged" in keyed else False,
            "x_fit": numeric_column(keyed, "x_pix_white_fit"),
            "y_fit": numeric_column(keyed, "y_pix_white_fit"),
            "re_fit": numeric_column(keyed, "Re_fit"),
            "ell_fit": numeric_column(keyed, "ELL_fit"),
            "theta_fit": numeric_column(keyed, "THETA_fit"),
        }
    )
    for band in bands:
        part[f"flux_fit_{band}"] = numeric_column(keyed, f"FLUX_{band}_fit")
        part[f"fluxerr_fit_{band}"] = numeric_column(keyed, f"FLUXERR_{band}_fit")
    return part


def source_table(
    catalog: pd.DataFrame, truth: pd.DataFrame, crop_origin: tuple[int, int]
) -> pd.DataFrame:
    """Every truth source with its fit (when the catalog has it), working-frame positions.

    Returns
    -------
    DataFrame
        :data:`SOURCE_COLUMNS` plus ``flux_fit_<band>``, ``fluxerr_fit_<band>``,
        ``flux_true_<band>``, ``mag_true_<band>``, ``saturated_<band>``.
    """
    bands = fitted_bands(catalog)
    out = truth[["ID", "TYPE", "role", "in_catalog"]].astype({"ID": str}).reset_index(drop=True)
    out["in_catalog"] = as_bool(out["in_catalog"])
    out["source_class"] = np.where(out["TYPE"].astype(str).str.upper() == "STAR", "star", "galaxy")
    out["x_true"] = numeric_column(truth, "x_pix") - crop_origin[0]
    out["y_true"] = numeric_column(truth, "y_pix") - crop_origin[1]
    for name, column in (("re_true", "re_pix"), ("ell_true", "ell"), ("theta_true", "theta_deg")):
        out[name] = numeric_column(truth, column)
    saturated = (
        truth.get("saturated_bands", pd.Series("", index=truth.index)).fillna("").astype(str)
    )
    for band in bands:
        out[f"flux_true_{band}"] = numeric_column(truth, f"FLUX_{band}")
        out[f"mag_true_{band}"] = numeric_column(truth, f"mag_{band}")
        out[f"saturated_{band}"] = (
            saturated.str.split(",").apply(lambda s, b=band: b in s).to_numpy()
        )
    out = out.merge(_fit_part(catalog, truth, bands), on="ID", how="left")
    out["in_output"] = out["in_output"].astype("boolean").fillna(False).astype(bool)
    out["excluded"] = out["excluded"].astype("boolean").fillna(False).astype(bool)
    out["converged"] = out["converged"].astype("boolean").fillna(False).astype(bool)
    out["fit_status"] = out["fit_status"].fillna("absent")
    out["dx"], out["dy"] = out["x_fit"] - out["x_true"], out["y_fit"] - out["y_true"]
    out["dtheta"] = wrap_angle_deg(out["theta_fit"] - out["theta_true"])
    snr = [out[f"flux_true_{b}"] / out[f"fluxerr_fit_{b}"] for b in bands]
    out["snr_best"] = np.fmax.reduce(np.column_stack(snr), axis=1) if bands and len(out) else np.nan
    return out[SOURCE_COLUMNS + [c for c in out.columns if c not in SOURCE_COLUMNS]]


def flux_table(sources: pd.DataFrame, bands: list[str], require_converged: bool) -> pd.DataFrame:
    """One row per usable (source, band): fitted, not excluded, not saturated in that band.

    ``snr_true`` is the true flux over the fitted error, so that the bins do not
    select on the measurement noise itself.
    """
    usable = sources["in_output"] & ~sources["excluded"]
    if require_converged:
        usable &= sources["converged"]
    rows = []
    for band in bands:
        keep = usable & ~sources[f"saturated_{band}"] & np.isfinite(sources[f"flux_fit_{band}"])
        part = sources.loc[keep, ["ID", "source_class", "role", "converged"]].copy()
        part["band"] = band
        part["mag_true"] = sources.loc[keep, f"mag_true_{band}"]
        part["flux_true"] = sources.loc[keep, f"flux_true_{band}"]
        part["flux_fit"] = sources.loc[keep, f"flux_fit_{band}"]
        part["fluxerr_fit"] = sources.loc[keep, f"fluxerr_fit_{band}"]
        part["snr_true"] = part["flux_true"] / part["fluxerr_fit"]
        rows.append(part[FLUX_COLUMNS])
    if not rows:
        return pd.DataFrame(columns=FLUX_COLUMNS)
    return pd.concat(rows, ignore_index=True)
