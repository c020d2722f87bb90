"""The survey catalog: every tile's rows, one primary measurement per source.

Rows of different tiles are one source when they share an ``ID`` within the match
radius, or, lacking a shared ``ID``, when they are mutual nearest neighbours within it.
The primary measurement of a source is the one farthest inside its tile's usable area
(the working frame after ``crop.margin``), the brick-primary rule of the Legacy Surveys.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from phot7dt.datasets import FrameSetDataset
from phot7dt.datasets.fits_table import nullable_flags

__all__ = [
    "AB_ZP_UJY",
    "add_calibrated_fluxes",
    "edge_distance",
    "mark_primary",
    "read_tile_catalog",
    "read_zero_points",
    "stack_tiles",
]

logger = logging.getLogger(__name__)

#: AB magnitude of 1 microjansky: ``m = 23.9 - 2.5 log10(F / uJy)``.
AB_ZP_UJY = 23.9
CATALOG = Path("07_model_output") / "output_catalog"
ZP_SUMMARY = Path("07_model_output") / "zp" / "zp_summary.csv"
FRAMES = Path("02_intermediate") / "frames.json"


def read_tile_catalog(work_dir: str | Path) -> pd.DataFrame:
    """The final catalog of one tile run: ``output_catalog.parquet``, else the CSV.

    The Parquet file is read through astropy, which turns its masked entries into
    missing values; ``ID`` and ``gaia_source_id`` come back as text.
    """
    from astropy.table import Table
    base = Path(work_dir) / CATALOG
    parquet = base.with_suffix(".parquet")
    if parquet.is_file():
        table = Table.read(parquet, format="parquet").to_pandas()
    else:
        table = pd.read_csv(base.with_suffix(".csv"), dtype={"ID": str, "gaia_source_id": str})
    table["ID"] = table["ID"].astype(str)
    return nullable_flags(table)


def stack_tiles(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The rows of every tile in one table, in the given order.

    A column that holds text in one tile and only missing values (read as float) in another
    stays text; True/False flags with missing entries become nullable booleans.
    """
    table = pd.concat(tables, ignore_index=True)
    for name in [c for c in table.columns if table[c].dtype == "object"]:
        values = table[name].dropna()
        if len(values) and values.map(lambda v: isinstance(v, str)).all():
            table[name] = table[name].astype("str")
    return nullable_flags(table)


def read_zero_points(work_dir: str | Path) -> pd.DataFrame:
    """Zero point and its error per band of one tile run (``band``, ``zp``, ``zp_err``, mag).

    Empty when the run did not calibrate (no ``zp_summary.csv``).
    """
    path = Path(work_dir) / ZP_SUMMARY
    if not path.is_file():
        return pd.DataFrame({"band": [], "zp": [], "zp_err": []})
    table = pd.read_csv(path, dtype={"band": str})
    return pd.DataFrame(
        {"band": table["band"], "zp": table["zp_median"], "zp_err": table["zp_err"]}
    )


def edge_distance(work_dir: str | Path, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Distance (px) of sky positions inside the tile's working frame; negative outside.

    The working frame is the images minus ``crop.margin`` (``02_intermediate/frames.json``);
    the distance is to its nearest edge, pixel edges at ``-0.5`` and ``n - 0.5``.
    """
    frames = FrameSetDataset(filepath=str(Path(work_dir) / FRAMES)).load()
    ny, nx = frames.shape
    x, y = frames.wcs.all_world2pix(np.asarray(ra, float), np.asarray(dec, float), 0)
    return np.minimum.reduce([x + 0.5, nx - 0.5 - x, y + 0.5, ny - 0.5 - y])


def add_calibrated_fluxes(table: pd.DataFrame, zero_points: pd.DataFrame) -> pd.DataFrame:
    """``ZP_{band}``, ``ZPERR_{band}`` (mag) and, where missing, ``FLUX[ERR]_{band}_uJy``.

    Calibrated fluxes are ``FLUX_{band}_fit * 10**(-0.4 (ZP - 23.9))`` microjansky with
    the tile's zero point of the band (NaN where the band was not calibrated).
    """
    out = table.copy()
    zp = zero_points.set_index("band")
    bands = [
        c[len("FLUX_") : -len("_fit")]
        for c in out.columns
        if c.startswith("FLUX_") and c.endswith("_fit")
    ]
    for band in bands:
        value = float(zp.loc[band, "zp"]) if band in zp.index else np.nan
        error = float(zp.loc[band, "zp_err"]) if band in zp.index else np.nan
        out[f"ZP_{band}"], out[f"ZPERR_{band}"] = value, error
        scale = 10.0 ** (-0.4 * (value - AB_ZP_UJY))
        if f"FLUX_{band}_uJy" not in out:
            out[f"FLUX_{band}_uJy"] = out[f"FLUX_{band}_fit"] * scale
            out[f"FLUXERR_{band}_uJy"] = out[f"FLUXERR_{band}_fit"] * scale
    return out


def _mutual_nearest(pairs: pd.DataFrame) -> pd.DataFrame:
    """Directed pairs ``(i, j)`` where j is i's nearest in j's tile and i is j's in i's."""
    best_j = pairs.loc[pairs.groupby(["i", "tile_j"])["sep"].idxmin()]
    best_i = pairs.loc[pairs.groupby(["j", "tile_i"])["sep"].idxmin()]
    return best_j.merge(best_i[["i", "j"]], on=["i", "j"])


def _links(table: pd.DataFrame, radius_arcsec: float) -> pd.DataFrame:
    """Row pairs of different tiles that are the same source (see the module docstring)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord, search_around_sky
    ra, dec = table["RA"].to_numpy(float), table["DEC"].to_numpy(float)
    rows = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
    if len(rows) < 2:  # noqa: PLR2004 - a pair needs two rows
        return pd.DataFrame({"i": [], "j": []}, dtype=int)
    coords = SkyCoord(ra[rows] * u.deg, dec[rows] * u.deg)
    i, j, sep, _ = search_around_sky(coords, coords, radius_arcsec * u.arcsec)
    tile, ids = table["TILE"].to_numpy(), table["ID"].to_numpy()
    pairs = pd.DataFrame({"i": rows[i], "j": rows[j], "sep": sep.arcsec})
    pairs = pairs[tile[i] != tile[j]]
    pairs["tile_i"], pairs["tile_j"] = tile[pairs["i"]], tile[pairs["j"]]
    same = ids[pairs["i"]] == ids[pairs["j"]]
    present = set(zip(ids, tile, strict=True))
    lone = np.array(
        [
            (ids[a], tj) not in present and (ids[b], ti) not in present
            for a, b, ti, tj in pairs[["i", "j", "tile_i", "tile_j"]].itertuples(index=False)
        ],
        dtype=bool,
    )
    by_position = _mutual_nearest(pairs[~same & lone]) if (~same & lone).any() else pairs[:0]
    return pd.concat([pairs[same], by_position], ignore_index=True)


def mark_primary(table: pd.DataFrame, radius_arcsec: float) -> pd.DataFrame:
    """Add ``survey_source`` (group index), ``survey_n_meas`` and ``survey_primary``.

    ``table`` holds every tile's rows with ``TILE``, ``ID``, ``RA``, ``DEC`` (deg) and
    ``survey_edge_dist_pix``. The primary row of a group has the largest edge distance
    (ties: first tile in manifest order, then row order).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    out = table.reset_index(drop=True).copy()
    n = len(out)
    links = _links(out, radius_arcsec)
    graph = coo_matrix((np.ones(len(links)), (links["i"], links["j"])), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    out["survey_source"] = group
    out["survey_n_meas"] = out.groupby("survey_source")["TILE"].transform("size")
    order = out.assign(_row=np.arange(n)).sort_values(
        ["survey_source", "survey_edge_dist_pix", "_row"], ascending=[True, False, True]
    )
    primary = np.zeros(n, dtype=bool)
    primary[order.drop_duplicates("survey_source")["_row"].to_numpy()] = True
    out["survey_primary"] = primary
    logger.info(
        "survey catalog: %d rows, %d sources, %d measured in more than one tile",
        n,
        int(primary.sum()),
        int((out.loc[primary, "survey_n_meas"] > 1).sum()),
    )
    return out
