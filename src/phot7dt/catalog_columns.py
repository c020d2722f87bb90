"""Rules for the columns of the input catalog (tract7dt's conventions)."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

#: Optional numeric columns besides ``FLUX_{band}`` and ``FLUX_{band}_ERR``.
NUMERIC_COLUMNS = ("ELL", "THETA", "Re", "SERSIC_n", "POS_ERR", "Re_ERR", "ELL_ERR", "THETA_ERR")
#: Strings read as a missing number.
_BLANKS = frozenset({"", "nan", "NaN", "NAN", "null", "NULL", "None"})
_MAX_LISTED = 20


def is_numeric_column(name: str) -> bool:
    """Whether ``name`` is a numeric catalog column (coordinates, fluxes, shapes, prior widths)."""
    return name in ("RA", "DEC") or name in NUMERIC_COLUMNS or name.startswith("FLUX_")


def catalog_bands(columns: pd.Index | list[str]) -> set[str]:
    """Band names of the ``FLUX_{band}`` columns (``FLUX_{band}_ERR`` are prior widths)."""
    return {c[len("FLUX_") :] for c in columns if c.startswith("FLUX_") and not c.endswith("_ERR")}


def find_column(catalog: pd.DataFrame, name: str, where: str) -> str | None:
    """The column holding ``name``: exact match, else a unique case-insensitive one (warned)."""
    if name in catalog.columns:
        return name
    matches = [c for c in catalog.columns if str(c).strip().upper() == name.upper()]
    if len(matches) > 1:
        raise ValueError(
            f"{where}: columns {matches} all match {name!r} (case-insensitive); keep one"
        )
    if matches:
        logger.warning(
            "%s uses column %r for %s; interpreting it as %s (rename it to %r to silence this)",
            where,
            matches[0],
            name,
            name,
            name,
        )
        return matches[0]
    return None


def _listed(values: list[str]) -> str:
    shown = ", ".join(repr(v) for v in values[:_MAX_LISTED])
    more = f" and {len(values) - _MAX_LISTED} more" if len(values) > _MAX_LISTED else ""
    return shown + more


def parse_ids(values: pd.Series, where: str) -> pd.Series:
    """IDs as exact strings; blank or duplicate IDs are errors listing them."""
    ids = values.astype("str")
    blank = ids.str.strip() == ""
    if blank.any():
        rows = np.flatnonzero(blank.to_numpy()).tolist()
        raise ValueError(
            f"{where}: column 'ID' is empty in {len(rows)} rows (data rows {rows[:_MAX_LISTED]})"
        )
    duplicated = ids[ids.duplicated(keep=False)].unique().tolist()
    if duplicated:
        raise ValueError(
            f"{where}: column 'ID' must be unique; "
            f"{len(duplicated)} IDs repeat: {_listed(duplicated)}"
        )
    return ids


def parse_numeric(values: pd.Series, column: str, ids: pd.Series, where: str) -> pd.Series:
    """Numbers of one column as float64; blanks become NaN, anything else unparsable is an error."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    text = values.astype("str").str.strip()
    blank = values.isna().to_numpy() | text.isin(_BLANKS).to_numpy()
    numbers = pd.to_numeric(text.where(~blank), errors="coerce").astype("float64")
    bad = numbers.isna().to_numpy() & ~blank
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{where}: column {column!r} must be numeric; first bad value {text.iloc[first]!r} "
            f"(data row {first}, ID {ids.iloc[first]!r}; {int(bad.sum())} bad values in all)"
        )
    return numbers


def fitted_bands(catalog: pd.DataFrame) -> list[str]:
    """Bands of the ``FLUX_<band>_fit`` columns, in column order."""
    return [
        c[len("FLUX_") : -len("_fit")]
        for c in catalog.columns
        if c.startswith("FLUX_") and c.endswith("_fit")
    ]


def as_bool(values: pd.Series) -> np.ndarray:
    """Booleans from bool, nullable or CSV text columns (missing -> False)."""
    if values.dtype == bool:
        return values.to_numpy()
    text = values.astype("string").str.strip().str.lower()
    return text.isin(["true", "1", "1.0"]).fillna(False).to_numpy(bool)


def bool_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as booleans (:func:`as_bool`; all False when absent)."""
    if column not in frame.columns:
        return np.zeros(len(frame), bool)
    return as_bool(frame[column])


def numeric_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as floats (NaN where missing or not a number; all NaN when absent)."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(float)


def catalog_summary(output_catalog: pd.DataFrame) -> dict[str, Any]:
    """Rows, fitted and excluded sources, converged fraction of the fitted ones."""
    excluded = bool_column(output_catalog, "excluded_any")
    fitted = ~excluded & np.isfinite(numeric_column(output_catalog, "x_pix_white_fit"))
    converged = bool_column(output_catalog, "opt_converged")
    n_fitted = int(fitted.sum())
    return {
        "n_rows": len(output_catalog),
        "n_fitted": n_fitted,
        "n_excluded": int(excluded.sum()),
        "fraction_converged": float(converged[fitted].mean()) if n_fitted else math.nan,
    }


def merge_key(catalog: pd.DataFrame) -> list[str]:
    """Columns identifying a source: ``ID`` when present, else ``RA`` and ``DEC`` (tract7dt)."""
    return ["ID"] if "ID" in catalog.columns else ["RA", "DEC"]
