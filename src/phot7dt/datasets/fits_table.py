"""``FITSTableDataset``: a pandas DataFrame as a FITS binary table."""

from __future__ import annotations

import io
from copy import deepcopy
from typing import Any

import pandas as pd
from astropy.io import fits
from astropy.table import Table
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_filepath_str

from phot7dt.datasets._files import make_filesystem, write_atomically

__all__ = ["FITSTableDataset"]


class FITSTableDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """A DataFrame stored as a FITS binary table (through :class:`astropy.table.Table`).

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

    DEFAULT_LOAD_ARGS: dict[str, Any] = {"hdu": 1}
    DEFAULT_SAVE_ARGS: dict[str, Any] = {"extname": "TABLE"}

    def __init__(  # noqa: PLR0913
        self,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset for the FITS table at ``filepath``."""
        self._protocol, self._filepath, self._fs, self._open_load, self._open_save = (
            make_filesystem(filepath, credentials, fs_args)
        )
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **deepcopy(load_args or {})}
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **deepcopy(save_args or {})}
        self.metadata = metadata

    @property
    def _path(self) -> str:
        return get_filepath_str(self._filepath, self._protocol)

    def load(self) -> pd.DataFrame:
        """Read the table HDU into a DataFrame (text columns as str)."""
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

    def save(self, data: pd.DataFrame) -> None:
        """Write the DataFrame as a binary-table extension, atomically."""
        try:
            table = Table.from_pandas(_with_plain_strings(data))
        except (TypeError, ValueError) as exc:
            raise DatasetError(
                f"FITS table {self._path}: cannot convert DataFrame ({exc})"
            ) from exc
        table_hdu = fits.table_to_hdu(table)
        table_hdu.name = self._save_args["extname"]
        buffer = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(), table_hdu]).writeto(buffer)
        write_atomically(
            self._fs,
            self._protocol,
            self._path,
            lambda s: s.write(buffer.getvalue()),
            self._open_save,
        )
        self._fs.invalidate_cache(self._path)

    def _exists(self) -> bool:
        return self._fs.exists(self._path)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._path, "protocol": self._protocol, "load_args": self._load_args}


def _with_plain_strings(data: pd.DataFrame) -> pd.DataFrame:
    """Text columns as numpy unicode (FITS has no null string: missing text becomes "")."""
    frame = data.reset_index(drop=True).copy()
    for name in frame.columns:
        if pd.api.types.is_string_dtype(frame[name]) and not pd.api.types.is_bool_dtype(
            frame[name]
        ):
            frame[name] = frame[name].fillna("").astype(str).to_numpy(dtype=str)
    return frame
