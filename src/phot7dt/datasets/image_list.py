"""``ImageListDataset``: tract7dt's image list, one FITS path per line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from kedro.io import AbstractDataset, DatasetError

from phot7dt.datasets._files import write_atomically
from phot7dt.frames import RawImage, open_pixels

__all__ = ["ImageListDataset", "read_image_list"]


def read_image_list(list_path: str | os.PathLike) -> list[str]:
    """Absolute FITS paths named by an image list.

    One path per line; blank lines and lines starting with ``#`` are ignored;
    relative paths are resolved against the list file's own folder.

    Raises
    ------
    DatasetError
        The list is missing, unreadable or names no image.
    """
    list_file = Path(list_path).expanduser().absolute()
    try:
        lines = list_file.read_text().splitlines()
    except FileNotFoundError:
        raise DatasetError(f"image list {list_file}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"image list {list_file}: cannot be read as text ({exc})") from exc
    entries = [line.strip() for line in lines]
    entries = [entry for entry in entries if entry and not entry.startswith("#")]
    if not entries:
        raise DatasetError(f"image list {list_file}: names no FITS file (empty list)")
    folder = list_file.parent
    return [str((folder / Path(entry).expanduser()).absolute()) for entry in entries]


def _read_image(path: str, list_file: str) -> RawImage:
    where = f"image list {list_file}: FITS file {path}"
    if not os.path.exists(path):
        raise DatasetError(f"{where}: file not found")
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
            header = hdul[0].header.copy()
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise DatasetError(f"{where}: not a readable FITS file ({exc})") from exc
    if header.get("NAXIS") != 2:
        raise DatasetError(
            f"{where}: primary HDU holds no 2-D image (NAXIS = {header.get('NAXIS')!r}, expected 2)"
        )
    scaled = {k: header[k] for k in ("BZERO", "BSCALE", "BLANK") if k in header}
    if header.get("BITPIX", 0) > 0 and (scaled.get("BZERO", 0) != 0 or scaled.get("BSCALE", 1) != 1
                                        or "BLANK" in scaled):
        raise DatasetError(
            f"{where}: scaled integer pixels (BITPIX = {header['BITPIX']}, {scaled}) cannot be "
            "memory-mapped; expected float pixels (BITPIX -32 or -64): convert the image first"
        )
    try:
        data = open_pixels(path, 0)
    except (OSError, ValueError, TypeError) as exc:
        raise DatasetError(
            f"{where}: pixels cannot be read, file truncated or corrupt ({exc})"
        ) from exc
    return RawImage(path=path, hdu=0, header=header, data=data)


class ImageListDataset(AbstractDataset[dict[str, tuple[np.ndarray, fits.Header]], list[RawImage]]):
    """The image list of a tile and its FITS images (tract7dt's format).

    ``load`` returns one :class:`~phot7dt.frames.RawImage` per listed file, in
    list order: the primary header plus a read-only memory map of the pixels (no
    pixel is read). ``save`` takes ``{band: (pixels, header)}``, writes
    ``<list folder>/<band>.fits`` per band and then the list with relative names,
    each file atomically.

    Examples
    --------
    .. code-block:: yaml

        raw_frames:
          type: phot7dt.datasets.ImageListDataset
          filepath: data/01_raw/sample/image_list.txt
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        """Create a dataset for the image list at ``filepath`` (a local file)."""
        self._filepath = Path(filepath).expanduser().absolute()
        self.metadata = metadata

    def load(self) -> list[RawImage]:
        """The listed images, headers read, pixels memory-mapped."""
        paths = read_image_list(self._filepath)
        return [_read_image(path, str(self._filepath)) for path in paths]

    def save(self, data: dict[str, tuple[np.ndarray, fits.Header]]) -> None:
        """Write one FITS file per band, then the list naming them."""
        if not data:
            raise DatasetError(f"image list {self._filepath}: nothing to save (no bands)")
        folder = self._filepath.parent
        names = []
        for band, (pixels, header) in data.items():
            name = f"{band}.fits"
            hdu = fits.PrimaryHDU(data=np.asarray(pixels), header=header)
            write_atomically(None, "file", str(folder / name), fits.HDUList([hdu]).writeto)
            names.append(name)
        text = "# FITS images of one tile, one per band\n" + "\n".join(names) + "\n"
        write_atomically(
            None, "file", str(self._filepath), lambda stream: stream.write(text.encode())
        )

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
