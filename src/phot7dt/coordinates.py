"""Rules for sky coordinates read from input tables (source catalog, GaiaXP synphot).

One rule for every table: a finite declination outside [-90, 90] deg names no
point of the sky and stops the run with one line naming the table, the column,
the first bad row and its ID; a finite right ascension outside [0, 360) deg is
the same point as its value modulo 360 (e.g. -0.5 for a catalog in the
[-180, 180) convention is 359.5) and is wrapped, with one warning. Non-finite
values (blank, NaN, inf) are left alone: such rows are kept and flagged
downstream, never dropped.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

__all__ = ["checked_sky_coordinates"]

logger = logging.getLogger(__name__)


def _first(rows: np.ndarray, values: np.ndarray, ids: pd.Series, what: str) -> str:
    first = int(np.flatnonzero(rows)[0])
    return (
        f"first {what} value {float(values[first])!r} (data row {first}, "
        f"ID {str(ids.iloc[first])!r}; {int(rows.sum())} {what} value(s) in all)"
    )


def checked_sky_coordinates(
    ra: pd.Series,
    dec: pd.Series,
    ids: pd.Series,
    where: str,
    *,
    columns: tuple[str, str] = ("RA", "DEC"),
) -> tuple[pd.Series, pd.Series]:
    """Right ascension wrapped into [0, 360) deg and declination checked to lie in [-90, 90].

    Parameters
    ----------
    ra, dec : Series of float
        Coordinates in degrees (ICRS), one per table row; NaN for a blank.
    ids : Series
        The rows' identifiers, named in messages (``ID``, Gaia ``source_id``).
    where : str
        The table, named first in messages (e.g. ``"input catalog /data/cat.csv"``).
    columns : (str, str)
        Names of the RA and DEC columns as the table spells them.

    Returns
    -------
    ra, dec : Series of float
        ``ra`` modulo 360 where it was finite and outside [0, 360); ``dec`` unchanged.

    Raises
    ------
    ValueError
        A finite declination outside [-90, 90] deg; one line naming ``where``,
        the column, the first such row (0-based data row) and its ID.
    """
    ra_name, dec_name = columns
    dec_values = dec.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        bad_dec = np.isfinite(dec_values) & (np.abs(dec_values) > 90.0)
    if bad_dec.any():
        raise ValueError(
            f"{where}: column {dec_name!r} must be within [-90, 90] deg; "
            f"{_first(bad_dec, dec_values, ids, 'bad')}"
        )
    ra_values = ra.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        outside = np.isfinite(ra_values) & ((ra_values < 0.0) | (ra_values >= 360.0))
    if not outside.any():
        return ra, dec
    logger.warning(
        "%s: column %r outside [0, 360) deg, wrapped modulo 360; %s",
        where, ra_name, _first(outside, ra_values, ids, "wrapped"),
    )
    wrapped = np.mod(ra_values, 360.0)
    wrapped[wrapped >= 360.0] = 0.0  # a tiny negative value rounds to 360.0
    return pd.Series(np.where(outside, wrapped, ra_values), index=ra.index, name=ra.name), dec
