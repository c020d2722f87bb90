"""``PNGDataset``: saves a matplotlib Figure (or PNG bytes), loads the PNG bytes."""

from __future__ import annotations

import io
from copy import deepcopy
from typing import TYPE_CHECKING, Any

from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_filepath_str

from phot7dt.datasets._files import make_filesystem, write_atomically

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PNGDataset"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PNGDataset(AbstractDataset["Figure | bytes", bytes]):
    """A PNG file: saves a Figure (``savefig`` with ``save_args``) or PNG bytes; loads bytes.

    Parameters
    ----------
    filepath : str
        Path or fsspec URL of the PNG.
    save_args : dict, optional
        Keyword arguments of ``Figure.savefig`` (``format`` is always png).
    fs_args, credentials, metadata
        As in kedro-datasets.
    """

    def __init__(
        self,
        *,
        filepath: str,
        save_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._protocol, self._filepath, self._fs, _, _ = make_filesystem(
            filepath, credentials, fs_args
        )
        self._save_args = {**deepcopy(save_args or {}), "format": "png"}
        self.metadata = metadata

    @property
    def _path(self) -> str:
        return get_filepath_str(self._filepath, self._protocol)

    def load(self) -> bytes:
        """The PNG bytes."""
        try:
            with self._fs.open(self._path, mode="rb") as handle:
                data = handle.read()
        except FileNotFoundError as exc:
            raise DatasetError(f"{self._path}: PNG file not found") from exc
        if not data.startswith(_PNG_SIGNATURE):
            raise DatasetError(f"{self._path}: not a PNG file (bad signature)")
        return data

    def save(self, data: Figure | bytes) -> None:
        """Write the figure (or bytes) as PNG, atomically."""
        from matplotlib.figure import Figure

        if isinstance(data, Figure):
            buffer = io.BytesIO()
            data.savefig(buffer, **self._save_args)
            data = buffer.getvalue()
        if not isinstance(data, bytes | bytearray) or not bytes(data).startswith(_PNG_SIGNATURE):
            raise DatasetError(f"{self._path}: expected a matplotlib Figure or PNG bytes")
        payload = bytes(data)
        write_atomically(self._fs, self._protocol, self._path, lambda s: s.write(payload))
        self._fs.invalidate_cache(self._path)

    def _exists(self) -> bool:
        return self._fs.exists(self._path)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._path, "protocol": self._protocol, "save_args": self._save_args}
