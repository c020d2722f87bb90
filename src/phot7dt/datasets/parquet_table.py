"""``ParquetTableDataset``: an astropy Table as Parquet, units and descriptions kept."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING

import pandas as pd
from kedro.io import DatasetError

from phot7dt.datasets._files import FileDataset

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["ParquetTableDataset"]


class ParquetTableDataset(FileDataset):
    """An astropy Table stored as Parquet.

    Column units and descriptions and the table's ``meta`` go into the Parquet
    schema metadata (astropy's serialisation: ``Table.read`` restores them;
    pandas and pyarrow read the plain columns). Loads a DataFrame.

    Parameters
    ----------
    filepath : str
        Path of the Parquet file, optionally with an fsspec protocol.
    fs_args, credentials, metadata
        As in kedro-datasets.
    """

    def load(self) -> pd.DataFrame:
        """Read the Parquet file into a DataFrame."""
        try:
            with self._fs.open(self._path, **{"mode": "rb", **self._open_load}) as stream:
                return pd.read_parquet(stream)
        except FileNotFoundError as exc:
            raise DatasetError(f"Parquet table {self._path}: file not found") from exc

    def save(self, data: Table) -> None:
        """Write the Table, atomically."""
        from astropy.table import Table
        if not isinstance(data, Table):
            raise DatasetError(f"Parquet table {self._path}: expected an astropy Table, "
                               f"got {type(data).__name__}")
        # astropy's Parquet writer takes only paths: write a scratch file, then copy it
        # into place atomically
        with tempfile.TemporaryDirectory(prefix="phot7dt-parquet-") as scratch:
            path = os.path.join(scratch, "table.parquet")
            data.write(path, format="parquet")
            with open(path, "rb") as source:
                self._write(lambda stream: shutil.copyfileobj(source, stream))
