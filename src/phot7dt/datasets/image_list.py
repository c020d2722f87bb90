"""``ImageListDataset``: tract7dt's image list, one FITS path per line (plus its weight image)."""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from kedro.io import AbstractDataset, DatasetError

from phot7dt.datasets._files import write_atomically
from phot7dt.frames import Pixels, RawImage, open_pixels
from phot7dt.pixel_maps import CompressedImage, image_hdu
from phot7dt.weights import summarize_weights, weight_problem

__all__ = ["ImageListDataset", "read_image_entries", "read_image_list"]

logger = logging.getLogger(__name__)

#: Tile-compressed images at least this wide in full-row tiles get a warning (region reads
#: decompress whole rows: a 300 px wide patch of a 9576 px wide image costs 32 times its pixels).
ROW_TILE_WARN_WIDTH = 2048

#: What ``save`` takes per band: ``(pixels, header)`` or ``(pixels, header, weight or None)``.
BandItem = tuple[np.ndarray, fits.Header] | tuple[np.ndarray, fits.Header, np.ndarray | None]


def read_image_entries(list_path: str | os.PathLike) -> list[tuple[str, str | None]]:
    """Absolute ``(image, weight image or None)`` paths named by an image list.

    One entry per line: the FITS image, optionally followed (after whitespace) by
    the path of its weight image; a path with spaces is written in quotes.
    Blank lines and lines starting with ``#`` are ignored; relative paths are
    resolved against the list file's own folder.

    Raises
    ------
    DatasetError
        The list is missing, unreadable, names no image, or has a line with more
        than two paths (or an unclosed quote).
    """
    list_file = Path(list_path).expanduser().absolute()
    try:
        lines = list_file.read_text().splitlines()
    except FileNotFoundError:
        raise DatasetError(f"image list {list_file}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"image list {list_file}: cannot be read as text ({exc})") from exc
    folder = list_file.parent
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        try:
            tokens = shlex.split(line)
        except ValueError as exc:
            where = f"image list {list_file}, line {number}"
            raise DatasetError(f"{where}: {exc} in {line!r}") from None
        if len(tokens) > 2:
            raise DatasetError(
                f"image list {list_file}, line {number}: {len(tokens)} paths {tokens}; expected "
                "an image path, optionally followed by its weight image path"
            )
        paths = [str((folder / Path(token).expanduser()).absolute()) for token in tokens]
        entries.append((paths[0], paths[1] if len(paths) == 2 else None))
    if not entries:
        raise DatasetError(f"image list {list_file}: names no FITS file (empty list)")
    return entries


def read_image_list(list_path: str | os.PathLike) -> list[str]:
    """Absolute FITS image paths named by an image list (:func:`read_image_entries`)."""
    return [image for image, _ in read_image_entries(list_path)]


def _open_fits(path: str, where: str) -> tuple[int, fits.Header, Pixels]:
    """Image HDU index, its header and its unread 2-D pixels (:func:`image_hdu`).

    Plain images must hold float (or unscaled integer) pixels, which are
    memory-mapped; tile-compressed images (``.fits.fz``) may hold any type.
    """
    if not os.path.exists(path):
        raise DatasetError(f"{where}: file not found")
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
            index = image_hdu(hdul)
            header = fits.Header(hdul[index].header)
            compressed = isinstance(hdul[index], fits.CompImageHDU)
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise DatasetError(f"{where}: not a readable FITS file ({exc})") from exc
    if header.get("NAXIS") != 2:
        hdu = f"tile-compressed HDU {index}" if compressed else "primary HDU"
        alone = "" if compressed else " and no tile-compressed image HDU follows"
        raise DatasetError(
            f"{where}: {hdu} holds no 2-D image (NAXIS = {header.get('NAXIS')!r}, expected 2)"
            + alone
        )
    scaled = {k: header[k] for k in ("BZERO", "BSCALE", "BLANK") if k in header}
    if not compressed and header.get("BITPIX", 0) > 0 and (
        scaled.get("BZERO", 0) != 0 or scaled.get("BSCALE", 1) != 1 or "BLANK" in scaled
    ):
        raise DatasetError(
            f"{where}: scaled integer pixels (BITPIX = {header['BITPIX']}, {scaled}) cannot be "
            "memory-mapped; expected float pixels (BITPIX -32 or -64): convert the image first"
        )
    try:
        data = open_pixels(path, index)
    except (OSError, ValueError, TypeError) as exc:
        raise DatasetError(
            f"{where}: pixels cannot be read, file truncated or corrupt ({exc})"
        ) from exc
    return index, header, data


def _check_weight(weight: str, image: RawImage, list_file: str) -> None:
    """Shape and values of a weight image (one chunked pass, cached per process)."""
    where = f"image list {list_file}: weight image {weight} (of {image.path})"
    _, _, data = _open_fits(weight, where)
    if data.shape != image.shape:
        raise DatasetError(
            f"{where}: shape {tuple(data.shape)} (NAXIS2, NAXIS1) differs from the image's "
            f"{image.shape}; expected the image's pixel grid"
        )
    try:
        problem = weight_problem(summarize_weights(weight))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{where}: pixels cannot be read ({exc})") from exc
    if problem:
        raise DatasetError(f"{where}: {problem}")


def _read_image(path: str, weight: str | None, list_file: str) -> RawImage:
    hdu, header, data = _open_fits(path, f"image list {list_file}: FITS file {path}")
    image = RawImage(path=path, hdu=hdu, header=header, data=data, weight_path=weight)
    if weight is not None:
        _check_weight(weight, image, list_file)
    return image


def _warn_row_tiles(images: list[RawImage], list_file: str) -> None:
    """One warning when wide tile-compressed images are compressed in full-row tiles."""
    rows = [
        image for image in images
        if isinstance(image.data, CompressedImage) and image.shape[1] >= ROW_TILE_WARN_WIDTH
        and image.data.tile_shape[1] >= image.shape[1]
    ]
    if rows:
        logger.warning(
            "image list %s: %d image(s) tile-compressed in full-row tiles (%s: tiles %s): every "
            "region read decompresses whole %d px rows, so patches and ePSF cells cost their "
            "height x %d px of decompression per band; for a tile you will fit, decompress the "
            "files once (funpack) or recompress them in square tiles (fpack -t 256,256)",
            list_file, len(rows), rows[0].path, "x".join(map(str, rows[0].data.tile_shape)),
            rows[0].shape[1], rows[0].shape[1],
        )


def _unpack(band: str, item: Any, where: str) -> tuple[np.ndarray, fits.Header, np.ndarray | None]:
    if not isinstance(item, tuple | list) or len(item) not in (2, 3):
        raise DatasetError(
            f"{where}: band {band!r}: expected (pixels, header) or (pixels, header, weight), "
            f"got {type(item).__name__}"
            + (f" of length {len(item)}" if isinstance(item, tuple | list) else "")
        )
    pixels, header, weight = (*item, None) if len(item) == 2 else item
    pixels = np.asarray(pixels)
    if weight is not None:
        weight = np.asarray(weight, dtype=np.float32)
        if weight.shape != pixels.shape:
            raise DatasetError(
                f"{where}: band {band!r}: weight shape {weight.shape} differs from the "
                f"image's {pixels.shape}"
            )
    return pixels, header, weight


class ImageListDataset(AbstractDataset[Mapping[str, BandItem], list[RawImage]]):
    """The image list of a tile and its FITS images (tract7dt's format, plus weight images).

    ``load`` returns one :class:`~phot7dt.frames.RawImage` per listed image, in
    list order: the image HDU's header plus its unread pixels (no image pixel is
    read). The image HDU is the primary HDU, or in a tile-compressed file
    (``.fits.fz``, fpack's layout) the first compressed image HDU, whose pixels
    are later decompressed region by region
    (:func:`~phot7dt.pixel_maps.image_hdu`). A line's optional second path is
    the band's weight image (:mod:`phot7dt.weights`), found the same way: it
    must be 2-D with the image's shape, no negative value and some positive
    finite value; it is checked in one pass of row chunks (once per process).

    ``save`` takes ``{band: (pixels, header)}`` or ``{band: (pixels, header,
    weight)}`` (``weight`` a float32 array or None), writes
    ``<list folder>/<band>.fits`` and, with a weight, ``<band>.weight.fits``
    per band and then the list with relative names (the weight image as the
    line's second column), each file atomically.

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
        """The listed images, headers read, pixels unread, weight images checked."""
        entries = read_image_entries(self._filepath)
        images = [_read_image(path, weight, str(self._filepath)) for path, weight in entries]
        _warn_row_tiles(images, str(self._filepath))
        return images

    def save(self, data: Mapping[str, BandItem]) -> None:
        """Write the FITS files of every band (image, then weight image), then the list."""
        where = f"image list {self._filepath}"
        if not data:
            raise DatasetError(f"{where}: nothing to save (no bands)")
        folder = self._filepath.parent
        lines = []
        for band, item in data.items():
            pixels, header, weight = _unpack(band, item, where)
            files = [(f"{band}.fits", pixels, header)]
            if weight is not None:
                files.append((f"{band}.weight.fits", weight, None))
            for name, array, head in files:
                hdu = fits.PrimaryHDU(data=array, header=head)
                write_atomically(None, "file", str(folder / name), fits.HDUList([hdu]).writeto)
            lines.append(" ".join(shlex.quote(name) for name, _, _ in files))
        text = "# FITS images of one tile, one per band\n" + "\n".join(lines) + "\n"
        write_atomically(
            None, "file", str(self._filepath), lambda stream: stream.write(text.encode())
        )

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
