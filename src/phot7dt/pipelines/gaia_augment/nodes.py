"""Gaia augmentation: tag catalog rows with GaiaXP stars, backfill fluxes, inject stars.

Zero points are measured on Gaia stars, so every GaiaXP star inside the region
of the catalog must be in the fitted catalog: either an input row within
``zp.match_radius_arcsec`` takes its ``gaia_source_id`` (and missing fluxes from
the synthetic photometry), or the star is appended as a point source.

Positions are working-frame pixels (0-based, pixel centres at integers); fluxes
are on the common scale ``zp_ref``: ``FLUX = 10**((zp_ref - mag) / 2.5)``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from phot7dt.config import section
from phot7dt.config.ingest import SourceSaturationCutParams
from phot7dt.config.zp import ZpParams
from phot7dt.coordinates import checked_sky_coordinates
from phot7dt.frames import Box, FrameSet
from phot7dt.pipelines.gaia_augment.selection import (
    NO_MATCH,
    gaia_selection_box,
    match_rows_to_gaia,
    sky_to_pixel,
    synphot_flux,
)
from phot7dt.source_flags import flag_catalog

logger = logging.getLogger(__name__)

GAIA_REQUIRED_COLUMNS = ("ra", "dec", "source_id", "phot_g_mean_mag")


def _validated_gaia(gaia: pd.DataFrame, bands: list[str]) -> pd.DataFrame:
    """Numeric GaiaXP table with ``mag_<band>`` for every band (NaN where absent).

    ``ra`` outside [0, 360) deg is wrapped; a finite ``dec`` outside [-90, 90] deg
    is an error naming the file, the column, the row and the ``source_id``.
    """
    source = gaia.attrs.get("filepath")  # set by AtomicCSVDataset
    where = "gaiaxp_synphot" if source is None else f"gaiaxp_synphot {source}"
    missing = [c for c in GAIA_REQUIRED_COLUMNS if c not in gaia.columns]
    if missing:
        raise ValueError(
            f"{where}: missing column(s) {missing}; expected {list(GAIA_REQUIRED_COLUMNS)}"
            f" and mag_<band> per band, got {list(gaia.columns)}"
        )
    out = pd.DataFrame({"source_id": gaia["source_id"].astype(str).str.strip()})
    for col in ("ra", "dec", "phot_g_mean_mag"):
        out[col] = pd.to_numeric(gaia[col], errors="coerce")
    out["ra"], out["dec"] = checked_sky_coordinates(
        out["ra"], out["dec"], out["source_id"], where, columns=("ra", "dec")
    )
    by_lower = {str(c).lower(): c for c in gaia.columns}
    absent = [b for b in bands if f"mag_{b}".lower() not in by_lower]
    if absent:
        logger.warning(
            "gaiaxp_synphot has no mag_<band> column for %s: no Gaia fluxes there", absent
        )
    for band in bands:
        src = by_lower.get(f"mag_{band}".lower())
        out[f"mag_{band}"] = pd.to_numeric(gaia[src], errors="coerce") if src else np.nan
    return out.drop_duplicates("source_id").reset_index(drop=True)


def _gaia_in_box(gaia: pd.DataFrame, params: ZpParams, frames: FrameSet, box: Box) -> pd.DataFrame:
    """Stars in the G window whose working-frame position falls in ``box``."""
    g = gaia["phot_g_mean_mag"]
    stars = gaia[(g >= params.gaia_mag_min) & (g <= params.gaia_mag_max)]
    stars = stars[np.isfinite(stars["ra"]) & np.isfinite(stars["dec"])].reset_index(drop=True)
    x, y = sky_to_pixel(frames, stars["ra"].to_numpy(), stars["dec"].to_numpy())
    inside = (x >= box.x0) & (x < box.x1) & (y >= box.y0) & (y < box.y1)
    return stars[inside].reset_index(drop=True)


def _flux_columns(catalog: pd.DataFrame, bands: list[str]) -> dict[str, str]:
    """Catalog column holding each band's flux (``FLUX_<band>``, case-insensitive)."""
    by_lower = {str(c).lower(): c for c in catalog.columns}
    return {b: by_lower.get(f"flux_{b}".lower(), f"FLUX_{b}") for b in bands}


def _tag_and_backfill(
    catalog: pd.DataFrame, stars: pd.DataFrame, matched: np.ndarray, bands: list[str], zp_ref: float
) -> int:
    """Write ``gaia_source_id`` and fill NaN/0 fluxes of matched rows in place; count fills."""
    hit = matched != NO_MATCH
    ids = np.full(len(catalog), "", dtype=object)
    ids[hit] = stars["source_id"].to_numpy()[matched[hit]]
    catalog["gaia_source_id"] = pd.Series(ids, index=catalog.index, dtype=str)
    n_filled = 0
    for band, col in _flux_columns(catalog, bands).items():
        if col not in catalog.columns:
            catalog[col] = np.nan
        current = pd.to_numeric(catalog[col], errors="coerce").to_numpy(dtype=float)
        gaia_flux = np.full(len(catalog), np.nan)
        gaia_flux[hit] = synphot_flux(stars[f"mag_{band}"].to_numpy()[matched[hit]], zp_ref)
        fill = hit & (np.isnan(current) | (current == 0)) & np.isfinite(gaia_flux)
        catalog[col] = np.where(fill, gaia_flux, current)
        n_filled += int(fill.sum())
    return n_filled


def _injected_rows(
    stars: pd.DataFrame,
    catalog: pd.DataFrame,
    frames: FrameSet,
    params: ZpParams,
    saturation: SourceSaturationCutParams,
) -> pd.DataFrame:
    """Rows for Gaia stars that match no catalog row, with their own positions and
    exclusion flags from ingest's ``flag_catalog`` (crop and saturation disk tests)."""
    ids = "gaia_" + stars["source_id"]
    clash = ids.isin(set(catalog["ID"].astype(str)))
    if clash.any():
        logger.warning(
            "not injecting %d Gaia stars whose ID is already in the catalog", clash.sum()
        )
        stars, ids = stars[~clash], ids[~clash]
    rows = pd.DataFrame(
        {
            "ID": pd.Series(ids.to_numpy(dtype=str), dtype=str),
            "RA": stars["ra"].to_numpy(),
            "DEC": stars["dec"].to_numpy(),
            "TYPE": "STAR",
            "POS_ERR": np.nan if params.gaia_pos_err_pix is None else params.gaia_pos_err_pix,
            "gaia_source_id": pd.Series(stars["source_id"].to_numpy(dtype=str), dtype=str),
        }
    )
    for band, col in _flux_columns(catalog, frames.bands).items():
        rows[col] = synphot_flux(stars[f"mag_{band}"].to_numpy(), frames.zp_ref)
    logger.info("Positions and exclusion flags of %d Gaia stars to inject:", len(rows))
    rows = flag_catalog(rows, frames, saturation)  # the same tests as the input sources
    if "row_index" in catalog.columns:
        start = int(catalog["row_index"].max()) + 1 if len(catalog) else 0
        rows["row_index"] = np.arange(start, start + len(rows))
    rows["is_injected_gaia"] = True
    return rows


def augment_catalog_with_gaia(
    flagged_catalog: pd.DataFrame,
    gaiaxp_synphot: pd.DataFrame | None,
    frames: FrameSet,
    zp: dict[str, Any],
    source_saturation_cut: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Tag catalog rows with GaiaXP stars, backfill their fluxes and inject the rest.

    Parameters
    ----------
    flagged_catalog : DataFrame
        Ingest's catalog: ``ID``, ``RA``, ``DEC`` (deg; NaN rows are kept untouched),
        ``FLUX_<band>`` (common scale), ``x_pix_white``, ``y_pix_white``,
        ``excluded_*`` flags, ``row_index``.
    gaiaxp_synphot : DataFrame or None
        GaiaXP table: ``ra``, ``dec`` (deg), ``source_id``, ``phot_g_mean_mag`` and
        ``mag_<band>`` (AB). None means no file was given.
    frames : FrameSet
        Working-frame WCS, shape, bands, ``zp_ref`` and saturation levels.
    zp, source_saturation_cut : dict
        Parameter sections ``zp`` and ``source_saturation_cut``.

    Returns
    -------
    augmented_catalog : DataFrame
        Input rows (same order) plus ``gaia_source_id`` ("" when none) and
        ``is_injected_gaia``, followed by the injected stars.
    summary : dict
        Selection box and counts, for the report and the overlay plot.
    """
    params = section(ZpParams, zp, "zp")
    catalog = flagged_catalog.copy()
    catalog["gaia_source_id"] = pd.Series("", index=catalog.index, dtype=str)
    catalog["is_injected_gaia"] = False
    if not params.enabled:
        logger.info("zp.enabled is false: catalog passed through without Gaia augmentation")
        return catalog, {"enabled": False, "n_rows": len(catalog)}
    if gaiaxp_synphot is None:
        raise ValueError(
            "zp.enabled is true but no GaiaXP synphot table was given (dataset 'gaiaxp_synphot',"
            " run-time parameter gaiaxp_synphot=<csv>); give the file or set zp.enabled: false"
        )
    gaia = _validated_gaia(gaiaxp_synphot, frames.bands)
    active = ~catalog["excluded_any"].fillna(False).astype(bool).to_numpy()
    box = gaia_selection_box(
        catalog["x_pix_white"].to_numpy(dtype=float)[active],
        catalog["y_pix_white"].to_numpy(dtype=float)[active],
        params.min_box_size_pix,
        frames.shape,
    )
    stars = _gaia_in_box(gaia, params, frames, box)
    if stars.empty:
        logger.warning(
            "no GaiaXP star with G in [%g, %g] inside the selection box %s: no zero point can be"
            " measured from this catalog",
            params.gaia_mag_min,
            params.gaia_mag_max,
            box,
        )
    matched = match_rows_to_gaia(
        pd.to_numeric(catalog["RA"], errors="coerce").to_numpy(dtype=float),
        pd.to_numeric(catalog["DEC"], errors="coerce").to_numpy(dtype=float),
        stars["ra"].to_numpy(),
        stars["dec"].to_numpy(),
        params.match_radius_arcsec,
    )
    n_filled = _tag_and_backfill(catalog, stars, matched, frames.bands, frames.zp_ref)
    unmatched = stars[~stars.index.isin(np.unique(matched[matched != NO_MATCH]))]
    injected = pd.DataFrame()
    if params.inject_gaia_sources and len(unmatched):
        saturation = section(
            SourceSaturationCutParams, source_saturation_cut, "source_saturation_cut"
        )
        injected = _injected_rows(
            unmatched.reset_index(drop=True), catalog, frames, params, saturation
        )
        catalog = pd.concat([catalog, injected], ignore_index=True)
    summary = _summary(params, gaia, stars, matched, injected, n_filled, box, len(unmatched))
    logger.info(
        "Gaia augmentation: %d stars in G window and box, %d catalog rows matched (%d stars),"
        " %d fluxes backfilled, %d stars injected (%d of them excluded), %d left out",
        summary["n_gaia_in_box"],
        summary["n_rows_matched"],
        summary["n_gaia_matched"],
        n_filled,
        summary["n_injected"],
        summary["n_injected_excluded"],
        summary["n_not_injected"],
    )
    return catalog, summary


def _summary(
    params: ZpParams,
    gaia: pd.DataFrame,
    stars: pd.DataFrame,
    matched: np.ndarray,
    injected: pd.DataFrame,
    n_filled: int,
    box: Box,
    n_unmatched: int,
) -> dict[str, Any]:
    n_injected = len(injected)
    return {
        "enabled": True,
        "inject_gaia_sources": params.inject_gaia_sources,
        "box_x0_x1_y0_y1": [box.x0, box.x1, box.y0, box.y1],
        "n_gaia_file": len(gaia),
        "n_gaia_in_box": len(stars),
        "n_rows_matched": int((matched != NO_MATCH).sum()),
        "n_gaia_matched": int(len(np.unique(matched[matched != NO_MATCH]))),
        "n_fluxes_backfilled": n_filled,
        "n_injected": n_injected,
        "n_injected_excluded": int(injected["excluded_any"].sum()) if n_injected else 0,
        "n_not_injected": n_unmatched - n_injected,
    }
