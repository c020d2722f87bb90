"""Initial model, shape and priors of every active source, from its catalog row (tract7dt rules).

* Model: ``TYPE`` upper-cased; STAR, EXP, DEV, SERSIC are kept, anything else
  (GAL, blank, unknown, or no ``TYPE`` column) becomes ``patch_run.gal_model``.
* Flux per band: ``FLUX_{band}`` (case-insensitive) when finite and > 0, else
  NaN, which the fit replaces by an aperture sum of radius ``r_ap``; either is
  floored at ``eps_flux`` when the patch is fitted. A flux prior
  ``FLUX_{band}_ERR`` applies only where the initial flux comes from the catalog.
* Shape: ``Re`` (px, NaN -> ``re_fallback_pix``), ``ELL`` (NaN -> 0; column
  absent -> 0.2, tract7dt's q = 0.8), ``THETA`` (deg CCW from +x; column absent
  -> 90), ``SERSIC_n`` (not finite or <= 0 -> ``sersic_n_init``).
* Priors: ``POS_ERR`` (px), ``Re_ERR`` (only where ``Re`` is finite),
  ``ELL_ERR`` and ``THETA_ERR`` (only where ``ELL`` and ``THETA`` are finite).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["MODEL_TYPES", "find_column", "initial_columns", ]

#: Model names the fit accepts.
MODEL_TYPES = ("STAR", "EXP", "DEV", "SERSIC")
#: ELL and THETA used when the catalog has no such column (tract7dt: q = 0.8, phi = 0).
ELL_WITHOUT_COLUMN = 0.2
THETA_WITHOUT_COLUMN = 90.0



def find_column(catalog: pd.DataFrame, name: str, *, case_insensitive: bool = False) -> str | None:
    """The catalog's column called ``name`` (optionally ignoring case), or None."""
    if name in catalog.columns:
        return name
    if case_insensitive:
        lowered = {str(c).lower(): c for c in catalog.columns}
        return lowered.get(name.lower())
    return None


def _numeric(catalog: pd.DataFrame, name: str | None, default: float = np.nan) -> np.ndarray:
    if name is None:
        return np.full(len(catalog), default, dtype=float)
    return pd.to_numeric(catalog[name], errors="coerce").to_numpy(dtype=float)


def _positive(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def model_types(catalog: pd.DataFrame, gal_model: str) -> np.ndarray:
    """Model of each row (STAR / EXP / DEV / SERSIC), ``gal_model`` where TYPE is not one."""
    if "TYPE" not in catalog.columns:
        return np.full(len(catalog), gal_model.upper(), dtype=object)
    kinds = catalog["TYPE"].fillna("").astype(str).str.strip().str.upper().to_numpy(dtype=object)
    return np.where(np.isin(kinds, MODEL_TYPES), kinds, gal_model.upper())


def initial_columns(
    catalog: pd.DataFrame,
    bands: Sequence[str],
    *,
    gal_model: str,
    re_fallback_pix: float,
    sersic_n_init: float,
) -> pd.DataFrame:
    """Fit inputs of every catalog row, one column per quantity (NaN = none).

    Returns
    -------
    DataFrame, same index as ``catalog``
        ``model_type``; ``flux_cat_{band}``, ``flux_cat_err_{band}`` (scaled
        counts); ``re_pix`` (px), ``ell``, ``theta_deg`` (deg), ``sersic_n``;
        ``pos_err`` (px), ``re_err`` (px), ``ell_err``, ``theta_err`` (deg).
    """
    out = {"model_type": model_types(catalog, gal_model)}
    for band in bands:
        flux = _positive(
            _numeric(catalog, find_column(catalog, f"FLUX_{band}", case_insensitive=True))
        )
        err = _positive(
            _numeric(catalog, find_column(catalog, f"FLUX_{band}_ERR", case_insensitive=True))
        )
        out[f"flux_cat_{band}"] = flux
        out[f"flux_cat_err_{band}"] = np.where(np.isfinite(flux), err, np.nan)
    re = _numeric(catalog, find_column(catalog, "Re"))
    ell_col, theta_col = find_column(catalog, "ELL"), find_column(catalog, "THETA")
    ell = _numeric(catalog, ell_col, ELL_WITHOUT_COLUMN)
    theta = _numeric(catalog, theta_col, THETA_WITHOUT_COLUMN)
    n = _numeric(catalog, find_column(catalog, "SERSIC_n"))
    out["re_pix"] = np.where(np.isfinite(re), re, re_fallback_pix)
    out["ell"] = ell
    out["theta_deg"] = theta
    out["sersic_n"] = np.where(np.isfinite(n) & (n > 0), n, sersic_n_init)
    out["pos_err"] = _positive(_numeric(catalog, find_column(catalog, "POS_ERR")))
    out["re_err"] = np.where(
        np.isfinite(re), _positive(_numeric(catalog, find_column(catalog, "Re_ERR"))), np.nan
    )
    shape_known = (
        (ell_col is not None) & (theta_col is not None) & np.isfinite(ell) & np.isfinite(theta)
    )
    out["ell_err"] = np.where(
        shape_known, _positive(_numeric(catalog, find_column(catalog, "ELL_ERR"))), np.nan
    )
    out["theta_err"] = np.where(
        shape_known, _positive(_numeric(catalog, find_column(catalog, "THETA_ERR"))), np.nan
    )
    return pd.DataFrame(out, index=catalog.index)
