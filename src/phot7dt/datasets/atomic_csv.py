"""A CSV dataset whose save never leaves a half-written file behind."""

from __future__ import annotations

import uuid
from copy import deepcopy
from pathlib import PurePosixPath
from typing import Any

import fsspec
import pandas as pd
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)


class AtomicCSVDataset(AbstractVersionedDataset[pd.DataFrame, pd.DataFrame]):
    """pandas CSV written to a temporary sibling file, then moved over the target.

    On a local file system the move is an atomic rename, so readers see either
    the previous file or the complete new one, and a crash while writing leaves
    the previous file intact. Object stores write whole objects anyway.

    Example (catalog YAML)::

        output_catalog:
          type: phot7dt.datasets.atomic_csv.AtomicCSVDataset
          filepath: data/07_model_output/output_catalog.csv
          load_args:
            dtype: {ID: str}

    Args:
        filepath: Path or fsspec URL of the CSV file.
        load_args: Keyword arguments of ``pandas.read_csv``.
        save_args: Keyword arguments of ``DataFrame.to_csv`` (``index`` defaults to False).
        version: Kedro version of the file, if versioned.
        credentials: Credentials of the fsspec file system.
        fs_args: Arguments of the fsspec file system constructor.
        metadata: Free metadata, ignored by Kedro.
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {}
    DEFAULT_SAVE_ARGS: dict[str, Any] = {"index": False}

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath, version)
        fs_args = deepcopy(fs_args) or {}
        if protocol == "file":
            fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(deepcopy(credentials) or {}), **fs_args)
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **(load_args or {})}
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def load(self) -> pd.DataFrame:
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        try:
            with self._fs.open(load_path, mode="rb") as handle:
                return pd.read_csv(handle, **self._load_args)
        except FileNotFoundError as exc:
            raise DatasetError(f"{load_path}: file not found") from exc

    def save(self, data: pd.DataFrame) -> None:
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        parent, name = save_path.rsplit("/", 1) if "/" in save_path else (".", save_path)
        temporary = f"{parent}/.{name}.{uuid.uuid4().hex}.partial"
        try:
            with self._fs.open(temporary, mode="wb") as handle:
                data.to_csv(handle, **self._save_args)
            self._fs.mv(temporary, save_path)
        except Exception as exc:
            if self._fs.exists(temporary):
                self._fs.rm(temporary)
            raise DatasetError(f"{save_path}: could not write the CSV ({exc})") from exc
        finally:
            self._invalidate_cache()

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(load_path)

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "load_args": self._load_args,
            "save_args": self._save_args,
            "version": self._version,
        }

    def _release(self) -> None:
        super()._release()
        self._invalidate_cache()

    def _invalidate_cache(self) -> None:
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))
