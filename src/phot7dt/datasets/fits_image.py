"""``FITSImageDataset``: one 2-D image and its header in a FITS file."""

from __future__ import annotations

import numpy as np
from astropy.io import fits
from kedro.io import DatasetError

from phot7dt.datasets._files import LOCAL_PROTOCOLS, FileDataset

__all__ = ["FITSImageDataset"]

ImageWithHeader = tuple[np.ndarray | None, fits.Header]


class FITSImageDataset(FileDataset):
    """A FITS image as ``(pixels, header)``.

    ``pixels`` is a 2-D array, or None for a header-only file (e.g. a WCS
    snapshot). Saves are atomic: a reader sees the previous file or the complete
    new one.

    Parameters
    ----------
    filepath : str
        Path of the FITS file, optionally with an fsspec protocol (``s3://``...).
    load_args : dict, optional
        ``hdu`` (index or name, default 0) and ``memmap`` (default False; local
        files only: the pixels stay on disk as a read-only memory map).
    save_args : dict, optional
        ``output_verify`` passed to :meth:`astropy.io.fits.HDUList.writeto`
        (default ``"exception"``).
    fs_args, credentials, metadata
        As in kedro-datasets.

    Examples
    --------
    .. code-block:: yaml

        white_stack:
          type: phot7dt.datasets.FITSImageDataset
          filepath: data/03_primary/white_stack.fits
          load_args:
            memmap: true
    """

    DEFAULT_LOAD_ARGS = {"hdu": 0, "memmap": False}
    DEFAULT_SAVE_ARGS = {"output_verify": "exception"}

    def load(self) -> ImageWithHeader:
        """Read ``(pixels, header)``; pixels are None for a header-only HDU."""
        hdu = self._load_args["hdu"]
        try:
            if self._protocol in LOCAL_PROTOCOLS and self._load_args["memmap"]:
                with fits.open(self._path, memmap=True) as hdul:
                    return _image_of(hdul[hdu], copy=False)
            with self._fs.open(self._path, **{"mode": "rb", **self._open_load}) as stream:
                with fits.open(stream, memmap=False) as hdul:
                    return _image_of(hdul[hdu], copy=True)
        except FileNotFoundError as exc:
            raise DatasetError(f"FITS image {self._path}: file not found") from exc
        except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
            raise DatasetError(f"FITS image {self._path}: cannot read HDU {hdu!r} ({exc})") from exc

    def save(self, data: ImageWithHeader) -> None:
        """Write ``(pixels, header)`` as the primary HDU, atomically."""
        pixels, header = data
        if pixels is not None and np.ndim(pixels) != 2:
            raise DatasetError(
                f"FITS image {self._path}: expected a 2-D array, got shape {np.shape(pixels)}"
            )
        hdul = fits.HDUList([fits.PrimaryHDU(data=pixels, header=header)])
        self._write(lambda stream: hdul.writeto(stream, **self._save_args))


def _image_of(hdu: fits.hdu.base.ExtensionHDU, *, copy: bool) -> ImageWithHeader:
    header = hdu.header.copy()
    data = hdu.data
    if data is None:
        return None, header
    if data.ndim != 2:
        raise ValueError(f"HDU holds a {data.ndim}-D array, expected 2-D")
    if copy:
        return np.array(data), header
    view = data.view()
    view.flags.writeable = False
    return view, header


class FITSHeaderDataset(FileDataset):
    """The header of one HDU of a FITS file (read-only), e.g. a reference WCS.

    With ``optional: true`` the path ``none`` stands for "no file": ``load`` gives None.

    Parameters
    ----------
    filepath : str
        Path of the FITS file, optionally with an fsspec protocol.
    optional : bool
        Whether ``filepath: none`` is allowed.
    load_args : dict, optional
        ``hdu`` (index or name, default 0).
    fs_args, credentials, metadata
        As in kedro-datasets.

    Examples
    --------
    .. code-block:: yaml

        wcs_reference:
          type: phot7dt.datasets.FITSHeaderDataset
          optional: true
          filepath: ${runtime_params:merge.wcs_fits, none}
    """

    DEFAULT_LOAD_ARGS = {"hdu": 0}

    def __init__(self, *, filepath: str, optional: bool = False, **kwargs) -> None:
        # Kedro makes relative catalog paths absolute, so `none` arrives as <project>/none
        self._absent = optional and str(filepath).strip().rsplit("/", 1)[-1].lower() == "none"
        super().__init__(filepath=filepath, **kwargs)

    def load(self) -> fits.Header | None:
        """The header (None when optional and the path is ``none``)."""
        if self._absent:
            return None
        hdu = self._load_args["hdu"]
        try:
            with self._fs.open(self._path, mode="rb") as stream:
                with fits.open(stream, memmap=False) as hdul:
                    return hdul[hdu].header.copy()
        except FileNotFoundError as exc:
            raise DatasetError(f"FITS file {self._path}: file not found") from exc
        except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
            raise DatasetError(
                f"FITS file {self._path}: cannot read the header of HDU {hdu!r} ({exc})"
            ) from exc

    def save(self, data: fits.Header) -> None:
        """Not supported: the file is an input."""
        raise DatasetError(f"FITS file {self._path}: read-only dataset")

    def _exists(self) -> bool:
        return not self._absent and super()._exists()
