"""Calibration stars of one band: Gaia-matched catalog rows with their per-star zero points."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .zeropoint import K_MAG

logger = logging.getLogger(__name__)


def _flag(values: pd.Series) -> np.ndarray:
    """Boolean column as a bool array; missing and unparsable values are False."""
    if values.dtype == bool:
        return values.to_numpy(dtype=bool, copy=True)
    text = values.astype("string").str.strip().str.lower()
    return text.isin(["true", "1", "1.0"]).fillna(False).to_numpy(dtype=bool)


def _source_ids(values: pd.Series) -> pd.Series:
    """Gaia source IDs as stripped strings, "" where there is none."""
    text = values.astype("string").str.strip().fillna("")
    return text.mask(text.str.lower().isin(["nan", "none", "<na>"]), "")


def reliable_fits(merged: pd.DataFrame) -> np.ndarray:
    """Rows whose fit may calibrate: ``fit_is_reliable`` (else ``opt_converged``), not excluded."""
    for column in ("fit_is_reliable", "opt_converged"):
        if column in merged:
            reliable = _flag(merged[column])
            break
    else:
        raise ValueError("merged_catalog: needs a column 'fit_is_reliable' or 'opt_converged' "
                         "to select reliably fitted calibration stars")
    if "excluded_any" in merged:
        reliable = reliable & ~_flag(merged["excluded_any"])
    return reliable


def saturated_in(merged: pd.DataFrame, band: str) -> np.ndarray:
    """Rows whose core is saturated in ``band`` (``band`` listed in ``saturated_bands``)."""
    if "saturated_bands" not in merged:
        return np.zeros(len(merged), dtype=bool)
    text = merged["saturated_bands"].astype("string").fillna("")
    return np.array([band in value.split(",") for value in text], dtype=bool)


def calibration_stars(
    merged: pd.DataFrame, gaiaxp_synphot: pd.DataFrame, band: str, use_saturated: bool = False
) -> pd.DataFrame | None:
    """Per-star zero points of ``band`` for every Gaia-matched row with a usable flux.

    A row is usable when its ``FLUX_{band}_fit`` and ``FLUXERR_{band}_fit`` are
    positive and finite and its Gaia ``mag_{band}`` is finite. ``status`` is
    ``candidate`` (goes to the zero-point fit), ``nonconverged`` (fit not
    reliable), ``ambiguous`` (its Gaia star is matched by more than one row,
    e.g. a split blend, so neither flux is the star's) or ``saturated`` (its
    core is saturated in ``band`` and ``use_saturated`` is false).

    Returns
    -------
    DataFrame or None
        Columns ``ID``, ``gaia_source_id``, ``band``, ``mag_gaia`` (AB mag), ``flux``,
        ``fluxerr`` (``zp_ref`` scale), ``snr``, ``zp_i``, ``zp_i_err`` (mag), ``status``,
        ``saturated_core`` (bool); None when ``gaiaxp_synphot`` has no ``mag_{band}`` column.
    """
    mag_column = f"mag_{band}"
    if mag_column not in gaiaxp_synphot:
        return None
    for column in ("ID", f"FLUX_{band}_fit", f"FLUXERR_{band}_fit"):
        if column not in merged:
            raise ValueError(f"merged_catalog: missing column {column!r}")
    if "gaia_source_id" in merged:
        gaia_ids = _source_ids(merged["gaia_source_id"])
    else:
        logger.warning("merged_catalog has no gaia_source_id column: no calibration stars")
        gaia_ids = pd.Series("", index=merged.index)
    matched = (gaia_ids != "").to_numpy()
    ambiguous = matched & gaia_ids.duplicated(keep=False).to_numpy()
    reliable = reliable_fits(merged)

    gaia_mags = pd.to_numeric(
        gaiaxp_synphot.assign(source_id=_source_ids(gaiaxp_synphot["source_id"]))
        .drop_duplicates("source_id").set_index("source_id")[mag_column],
        errors="coerce",
    )
    mag_gaia = gaia_mags.reindex(gaia_ids.to_numpy()).to_numpy(dtype=float)
    flux = pd.to_numeric(merged[f"FLUX_{band}_fit"], errors="coerce").to_numpy(dtype=float)
    fluxerr = pd.to_numeric(merged[f"FLUXERR_{band}_fit"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        usable = matched & np.isfinite(mag_gaia) & (flux > 0) & (fluxerr > 0)
    usable &= np.isfinite(flux) & np.isfinite(fluxerr)
    rows = np.flatnonzero(usable)
    saturated = saturated_in(merged, band)[rows]
    status = np.where(ambiguous[rows], "ambiguous",
                      np.where(reliable[rows], "candidate", "nonconverged"))
    status = np.where(saturated & ~use_saturated & (status == "candidate"), "saturated", status)
    return pd.DataFrame({
        "ID": merged["ID"].to_numpy()[rows].astype(str),
        "gaia_source_id": gaia_ids.to_numpy()[rows].astype(str),
        "band": band,
        "mag_gaia": mag_gaia[rows],
        "flux": flux[rows],
        "fluxerr": fluxerr[rows],
        "snr": flux[rows] / fluxerr[rows],
        "zp_i": mag_gaia[rows] + 2.5 * np.log10(flux[rows]),
        "zp_i_err": K_MAG * fluxerr[rows] / flux[rows],
        "status": status.astype(object),
        "saturated_core": saturated,
    })
