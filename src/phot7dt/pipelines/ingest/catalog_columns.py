"""Rules for the columns of the input catalog (tract7dt's conventions)."""

from __future__ import annotations

import logging

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
