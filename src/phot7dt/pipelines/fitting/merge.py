"""Joining per-patch results onto the active catalog; reliability of every row.

The ``fit_status`` of each row comes from the registry in :mod:`.status`.
Quantities that were not measured are NaN (never 0); optimiser flags of rows
without a fit are missing values (nullable booleans/integers).
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from astropy.io import fits

from phot7dt.scene import flag_bit

if TYPE_CHECKING:
    from astropy.wcs import WCS

__all__ = [
    "assigned_patches",
    "check_unfitted",
    "collect_fits",
    "expected_columns",
    "fitted",
    "join_fits",
    "log_summary",
    "ordered",
    "reliable",
    "sky_positions",
    "working_wcs",
]

logger = logging.getLogger(__name__)

_BOOL_COLUMNS = ("opt_converged", "opt_hit_max_iters", "flag_bound_stalled")
_INT_COLUMNS = ("opt_niters", "fit_flags", "psf_min_epsf_nstars_for_use", "n_artefact_pix")


def collect_fits(tables: list[pd.DataFrame], key: list[str]) -> pd.DataFrame:
    """Concatenate patch tables (patch-tag order); duplicate keys keep the first, with a warning."""
    if not tables:
        return pd.DataFrame(columns=key)
    fits = pd.concat(tables, ignore_index=True)
    dup = fits.duplicated(key, keep="first")
    if dup.any():
        logger.warning(
            "merge: %d duplicate key(s) %s in the patch results (e.g. %s); keeping the first",
            int(dup.sum()),
            key,
            fits.loc[dup, key].head(3).to_dict("records"),
        )
        fits = fits[~dup]
    return fits


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Optimiser flags as nullable booleans/integers: missing (not False/0) where not fitted."""
    for col in frame.columns:
        if col.startswith(_BOOL_COLUMNS) and "which" not in col:
            frame[col] = frame[col].astype("boolean")
        elif col.startswith(_INT_COLUMNS) or (col.startswith("psf_") and col.endswith("_count")):
            frame[col] = frame[col].astype("Int64")
    return frame


def expected_columns(bands: list[str], multi_band: bool) -> dict[str, str]:
    """Fit columns every merged catalog has, even when nothing was fitted: name -> dtype."""
    cols = {
        "stype_fit": "str",
        "opt_converged": "boolean",
        "opt_hit_max_iters": "boolean",
        "flag_bound_stalled": "boolean",
        "fit_flags": "Int64",
        "n_artefact_pix": "Int64",
    }
    for band in bands:
        cols[f"FLUX_{band}_fit"] = cols[f"FLUXERR_{band}_fit"] = "float64"
        cols[f"FLUXERR_{band}_stat"] = "float64"
    suffixes = ["_fit"] if multi_band else [f"_{b}_fit" for b in bands]
    for suffix in suffixes:
        for name in ("x_pix_white", "y_pix_white", "Re", "ELL", "THETA", "sersic_n"):
            cols[f"{name}{suffix}"] = "float64"
    return cols


def join_fits(
    catalog: pd.DataFrame,
    fits: pd.DataFrame,
    key: list[str],
    expected: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Left join of the fit columns (those not already in ``catalog``) onto every catalog row.

    Columns of ``expected`` missing from ``fits`` (no patch fitted) are added, all missing.
    """
    fits = fits.copy()
    for name, dtype in (expected or {}).items():
        if name not in fits.columns:
            fits[name] = pd.Series(index=fits.index, dtype=dtype)
    new = [c for c in fits.columns if c not in catalog.columns]
    merged = catalog.merge(fits[[*key, *new]], how="left", on=key, sort=False)
    if len(merged) != len(catalog):
        raise ValueError(f"active_catalog: merge key {key} is not unique; cannot join the fits")
    return _typed(merged)


def sky_positions(merged: pd.DataFrame, wcs: WCS) -> pd.DataFrame:
    """Add ``RA_fit``/``DEC_fit`` (per band: ``RA_{b}_fit``) from the fitted white-frame pixels."""
    for xcol in [c for c in merged.columns if c.startswith("x_pix_white") and c.endswith("_fit")]:
        suffix = xcol[len("x_pix_white") :]
        x = merged[xcol].to_numpy(float)
        y = merged[xcol.replace("x_pix_white", "y_pix_white")].to_numpy(float)
        ra, dec = np.full(x.shape, np.nan), np.full(x.shape, np.nan)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():
            ra[ok], dec[ok] = wcs.all_pix2world(x[ok], y[ok], 0)
        merged[f"RA{suffix}"], merged[f"DEC{suffix}"] = ra, dec
    return merged


def _flag(merged: pd.DataFrame, name: str) -> np.ndarray:
    if name not in merged.columns:
        return np.zeros(len(merged), bool)
    return merged[name].astype("boolean").fillna(False).to_numpy(bool)


def fitted(merged: pd.DataFrame) -> np.ndarray:
    """Rows with a fit result (a finite fitted position in any band)."""
    cols = [c for c in merged.columns if c.startswith("x_pix_white") and c.endswith("_fit")]
    if not cols:
        return np.zeros(len(merged), bool)
    return np.logical_or.reduce([np.isfinite(merged[c].to_numpy(float)) for c in cols])


def _fully_masked(merged: pd.DataFrame) -> np.ndarray:
    if "fit_flags" not in merged.columns:
        return np.zeros(len(merged), bool)
    flags = merged["fit_flags"].fillna(0).to_numpy(np.int64)
    return (flags & flag_bit("fully_masked")) != 0


def reliable(merged: pd.DataFrame) -> np.ndarray:
    """tract7dt's ``fit_is_reliable``: fitted, not excluded, no hard optimiser or mask problem."""
    bad = _flag(merged, "excluded_any") | ~fitted(merged) | _flag(merged, "opt_hit_max_iters")
    bad |= _flag(merged, "flag_bound_stalled") | _flag(merged, "affected_by_bright_mask")
    return ~(bad | _fully_masked(merged))


def check_unfitted(merged: pd.DataFrame, failed_tags: set[str]) -> None:
    """Log an ERROR naming active rows left without a result by a patch that did not fail
    (e.g. a results folder changed between fitting and merging); they are ``patch_failed``."""
    lost = (merged["fit_status"] == "patch_failed").to_numpy(bool) & ~merged["patch_tag"].isin(
        sorted(failed_tags)
    ).to_numpy(bool)
    if lost.any():
        logger.error(
            "merge: %d active row(s) have no result although their patch did not fail "
            "(patches %s); they are marked patch_failed",
            int(lost.sum()),
            ", ".join(sorted(set(merged.loc[lost, "patch_tag"].fillna("none").astype(str)))[:10]),
        )


#: Order of the fit columns after the catalog's own (prefix match, first wins).
_COLUMN_ORDER = (
    "patch_tag",
    "epsf_tag",
    "x_pix_patch",
    "y_pix_patch",
    "x_pix_white_",
    "y_pix_white_",
    "RA_",
    "DEC_",
    "stype_fit",
    "re_pix_",
    "ab_",
    "phi_deg_",
    "ELL_",
    "Re_",
    "THETA_",
    "sersic_n_",
    ("FLUX_", "FLUXERR_"),
    "opt_converged",
    "opt_niters",
    "opt_last_dlnp",
    "opt_hit_max_iters",
    "flag_bound_stalled",
    "fit_flag",
    "psf_",
    "fit_is_reliable",
    "fit_status",
    "catalog_is_partial",
)


def ordered(merged: pd.DataFrame, catalog_columns: list[str]) -> pd.DataFrame:
    """Catalog columns first, then the fit columns grouped as in :data:`_COLUMN_ORDER`."""

    def rank(col: str) -> int:
        return next(
            (i for i, p in enumerate(_COLUMN_ORDER) if col.startswith(p)), len(_COLUMN_ORDER)
        )

    extra = sorted((c for c in merged.columns if c not in catalog_columns), key=rank)
    return merged[[*catalog_columns, *extra]]


def working_wcs(
    snapshot_header: fits.Header, reference: fits.Header | None, wcs_fits: str | None = None
) -> WCS:
    """Celestial WCS of the working frame: the snapshot, or the ``merge.wcs_fits`` file's
    header (dataset ``wcs_reference``) when one is given; ``wcs_fits`` names it in errors."""
    from astropy.wcs import WCS, FITSFixedWarning
    header = snapshot_header if reference is None else reference
    name = "wcs_snapshot" if reference is None else f"merge.wcs_fits {wcs_fits or ''}".strip()
    try:
        with warnings.catch_warnings():  # a header-only WCS file has NAXIS = 0
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header).celestial
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{name}: no celestial WCS ({exc})") from exc
    if not wcs.has_celestial:
        raise ValueError(f"{name}: no celestial WCS in the header")
    return wcs


def assigned_patches(merged: pd.DataFrame, payloads: pd.DataFrame, key: list[str]) -> pd.Series:
    """Patch of each catalog row (its base patch in the payloads; missing when none)."""
    base = payloads.loc[~payloads["is_halo"].astype(bool), [*key, "patch_tag"]].drop_duplicates(key)
    tags = merged[key].merge(base, how="left", on=key)["patch_tag"]
    return pd.Series(tags.to_numpy(dtype=object), index=merged.index).astype("str")


def log_summary(merged: pd.DataFrame) -> None:
    """One log line: rows, columns, counts per fit status, reliable rows."""
    counts = merged["fit_status"].value_counts()
    logger.info(
        "merged catalog: %d rows, %d columns; fit_status %s; %d reliable",
        len(merged),
        merged.shape[1],
        ", ".join(f"{k}={v}" for k, v in counts.items()),
        int(merged["fit_is_reliable"].sum()),
    )
