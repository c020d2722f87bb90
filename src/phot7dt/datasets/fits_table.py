"""``FITSTableDataset``: a pandas DataFrame or an astropy Table as a FITS binary table."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pandas as pd
from astropy.io import fits
from kedro.io import DatasetError

from phot7dt.datasets._files import FileDataset

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["FITSTableDataset", "nullable_flags", "plain_strings", "table_hdu"]

_TRUTH = {True: True, False: False, "True": True, "False": False, "true": True, "false": False}


class FITSTableDataset(FileDataset):
    """A table stored as a FITS binary table (through :class:`astropy.table.Table`).

    Saves a DataFrame, or an astropy Table whose column units become ``TUNIT``,
    descriptions ``TCOMM`` and ``meta`` header cards of the table HDU; loads a DataFrame.

    Parameters
    ----------
    filepath : str
        Path of the FITS file, optionally with an fsspec protocol.
    load_args : dict, optional
        ``hdu`` (index or name of the table HDU, default 1).
    save_args : dict, optional
        ``extname`` of the table HDU (default ``"TABLE"``).
    fs_args, credentials, metadata
        As in kedro-datasets.
    """

    DEFAULT_LOAD_ARGS = {"hdu": 1}
    DEFAULT_SAVE_ARGS = {"extname": "TABLE"}

    def load(self) -> pd.DataFrame:
        """Read the table HDU into a DataFrame (text columns as str)."""
        from astropy.table import Table
        hdu = self._load_args["hdu"]
        try:
            with self._fs.open(self._path, **{"mode": "rb", **self._open_load}) as stream:
                with fits.open(stream, memmap=False) as hdul:
                    table = Table(hdul[hdu].data, copy=True)
        except FileNotFoundError as exc:
            raise DatasetError(f"FITS table {self._path}: file not found") from exc
        except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
            raise DatasetError(f"FITS table {self._path}: cannot read HDU {hdu!r} ({exc})") from exc
        table.convert_bytestring_to_unicode()
        return table.to_pandas()

    def save(self, data: pd.DataFrame | Table) -> None:
        """Write the table as a binary-table extension, atomically."""
        from astropy.table import Table
        try:
            table = data if isinstance(data, Table) else Table.from_pandas(plain_strings(data))
            hdu = table_hdu(table, self._save_args["extname"])
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"FITS table {self._path}: cannot convert table ({exc})") from exc
        buffer = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buffer)
        payload = buffer.getvalue()
        self._write(lambda s: s.write(payload))


def table_hdu(table: Table, extname: str) -> fits.BinTableHDU:
    """The binary-table HDU of ``table``, with ``TCOMMn`` holding column descriptions."""
    hdu = fits.table_to_hdu(table)
    hdu.name = extname
    for index, column in enumerate(table.columns.values(), start=1):
        if column.description:
            hdu.header[f"TCOMM{index}"] = str(column.description)
    return hdu


def nullable_flags(data: pd.DataFrame) -> pd.DataFrame:
    """Text or object columns holding only True/False and blanks (flags of rows that were
    not fitted, e.g. after a CSV round trip) as pandas' nullable ``boolean``: masked in
    Parquet, False in FITS."""
    out = data.copy()
    for name in out.columns:
        column = out[name]
        if column.dtype == bool or pd.api.types.is_numeric_dtype(column):
            continue
        values = column.dropna()
        values = values[values.astype(str).str.strip() != ""]
        if len(values) and values.map(lambda v: v in _TRUTH).all():
            out[name] = column.map(lambda v: _TRUTH.get(v, pd.NA)).astype("boolean")
    return out


def plain_strings(data: pd.DataFrame) -> pd.DataFrame:
    """Text columns as numpy unicode (FITS has no null string: missing text becomes "")."""
    frame = data.reset_index(drop=True).copy()
    for name in frame.columns:
        if pd.api.types.is_string_dtype(frame[name]) and not pd.api.types.is_bool_dtype(
            frame[name]
        ):
            frame[name] = frame[name].fillna("").astype(str).to_numpy(dtype=str)
    return frame
