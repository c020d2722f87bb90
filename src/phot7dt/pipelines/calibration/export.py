"""The science-ready catalog: calibrated µJy fluxes, units, descriptions, provenance."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from phot7dt.datasets.fits_table import nullable_flags, plain_strings
from phot7dt.output_columns import column_info
from phot7dt.provenance import utc_now

if TYPE_CHECKING:
    from astropy.table import Table
else:
    Table = object  # Kedro resolves node annotations at run time; astropy.table loads on use

logger = logging.getLogger(__name__)

#: AB magnitude of 1 µJy.
AB_MAG_1UJY = 23.9


def microjansky_columns(catalog: pd.DataFrame, zp_summary: pd.DataFrame) -> pd.DataFrame:
    """``FLUX_{band}_uJy`` and ``FLUXERR_{band}_uJy`` for every band of ``zp_summary``.

    ``F[µJy] = FLUX_fit · 10^(0.4 (23.9 − zp_median))``, so ``−2.5 log10 F[µJy] + 23.9``
    equals ``MAG_{band}_fit`` wherever the flux is positive; negative fluxes are kept.
    The error scales ``FLUXERR_{band}_fit`` and leaves out the band's zero-point error
    (common to every source, in the catalog header). NaN where the band has no zero point.
    """
    columns: dict[str, np.ndarray] = {}
    for band, zp in zip(zp_summary["band"], zp_summary["zp_median"], strict=True):
        scale = 10.0 ** (0.4 * (AB_MAG_1UJY - float(zp))) if np.isfinite(zp) else np.nan
        for kind in ("FLUX", "FLUXERR"):
            values = pd.to_numeric(catalog.get(f"{kind}_{band}_fit"), errors="coerce")
            columns[f"{kind}_{band}_uJy"] = np.asarray(values, dtype=float) * scale
    return pd.DataFrame(columns, index=catalog.index)


def _header_cards(record: dict[str, Any], zp_summary: pd.DataFrame, zp_ref: float) -> dict:
    cards: dict[str, Any] = {
        "P7DTVER": record["phot7dt_version"],
        "P7DTGIT": record["git_commit"] or "unknown",
        "PIPELINE": record["pipeline"],
        "PARHASH": record["parameters_sha256"],
        "DATE-BEG": record["started_utc"],
        "DATE-END": record["catalog_utc"],
        "ZP_REF": zp_ref,
        "FLUXUNIT": "FLUX_*_fit: scaled counts at ZP_REF; FLUX_*_uJy: microjansky",
        "NINPUT": len(record["inputs"]),
        "NZP": len(zp_summary),
    }
    for i, item in enumerate(record["inputs"], start=1):
        cards |= {f"INNAM{i:03d}": item["name"], f"INPTH{i:03d}": item["path"],
                  f"INBYT{i:03d}": item["bytes"], f"INSHA{i:03d}": item["sha256"]}
    for i, row in enumerate(zp_summary.itertuples(index=False), start=1):
        cards |= {f"ZPBND{i:03d}": str(row.band), f"ZPMED{i:03d}": _finite(row.zp_median),
                  f"ZPERR{i:03d}": _finite(row.zp_err)}
    return cards


def _finite(value: Any) -> float | str:
    value = float(value)
    return value if np.isfinite(value) else "nan"


def _science_table(catalog: pd.DataFrame, meta: dict[str, Any]) -> Table:
    from astropy.table import Table
    table = Table.from_pandas(plain_strings(nullable_flags(catalog)))
    for name in table.colnames:
        info = column_info(name)
        if info is None:
            logger.warning("output column %s has no unit/description in phot7dt.output_columns",
                           name)
            continue
        table[name].unit = info.unit or None
        table[name].description = info.description
    table.meta.update(meta)
    return table


def export_catalog(
    output_catalog: pd.DataFrame,
    zp_summary: pd.DataFrame,
    run_provenance,
    image_scaling: dict[str, Any],
) -> tuple[Table, Table, dict[str, Any], dict[str, Any]]:
    """The final catalog as a science table, plus the run's provenance and parameters.

    Parameters
    ----------
    output_catalog : DataFrame
        The calibrated catalog (``apply_zero_points``).
    zp_summary : DataFrame
        Zero point per band (``zp_median``, ``zp_err``, mag).
    run_provenance : phot7dt.provenance.RunProvenance
        The run's record (version, commit, parameters, input files with checksums).
    image_scaling : dict
        ``image_scaling`` section (``zp_ref``, mag).

    Returns
    -------
    (Table, Table, dict, dict)
        The table for FITS and for Parquet (every column with its unit and
        description, ``FLUX_{band}_uJy``/``FLUXERR_{band}_uJy`` added, the provenance
        in ``meta``), the provenance as JSON-safe data (with zero points) and the
        full parameter set.
    """
    record = run_provenance.as_dict(wait=True) | {"catalog_utc": utc_now()}
    record["zero_points"] = {
        str(row.band): {"zp_median": _finite(row.zp_median), "zp_err": _finite(row.zp_err)}
        for row in zp_summary.itertuples(index=False)
    }
    catalog = pd.concat([output_catalog, microjansky_columns(output_catalog, zp_summary)], axis=1)
    zp_ref = float(image_scaling["zp_ref"])
    table = _science_table(catalog, _header_cards(record, zp_summary, zp_ref))
    logger.info("Science catalog: %d rows, %d columns, %d input files recorded", len(table),
                len(table.colnames), len(record["inputs"]))
    return table, table, record, run_provenance.parameters
