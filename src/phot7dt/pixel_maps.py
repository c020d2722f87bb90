"""FITS image pixels read region by region: plain images through a memory map,
tile-compressed images (``.fits.fz``) through astropy's ``section``.

This module owns "open an image and read a region": :func:`open_pixels` opens
the image HDU of a file (:func:`image_hdu`) without reading a pixel,
:func:`window` narrows it to a sub-image (still no pixel read) and
:func:`read_region` reads a region into memory. A plain image is a read-only
memory map (numpy basic indexing gives views); a tile-compressed one is a
:class:`CompressedImage`, whose indexing decompresses only the tiles the region
touches, :data:`COMPRESSED_ROW_BLOCK` rows at a time. Either way a region read
leaves no file page resident in the process.

Owned by :mod:`phot7dt.frames`, which re-exports :class:`RawImage`,
:func:`open_pixels` and :func:`release_pages`; kept apart so that
:mod:`phot7dt.weights` can read weight images without importing the frames.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import mmap
import os
from typing import Any

import numpy as np
from astropy.io import fits

__all__ = [
    "COMPRESSED_ROW_BLOCK",
    "FAULT_AROUND_BYTES",
    "CompressedImage",
    "Pixels",
    "RawImage",
    "image_hdu",
    "open_pixels",
    "read_region",
    "release_pages",
    "window",
]

#: Bytes the kernel may map around a faulting page of a file (fault-around, and whole
#: large page-cache folios of up to 2 MiB): :func:`release_pages` releases this margin too.
FAULT_AROUND_BYTES = 2 << 20
#: Rows of a tile-compressed image decompressed at once (full-width row tiles, fpack's
#: default, make this the size of the temporary arrays: 256 x 9576 float32 = 10 MB).
COMPRESSED_ROW_BLOCK = 256


def image_hdu(hdul: fits.HDUList) -> int:
    """Index of a file's image HDU.

    The primary HDU when it holds a 2-D image (tract7dt's layout), else the
    first tile-compressed image HDU (``CompImageHDU``: fpack's ``.fits.fz``
    layout, an empty primary HDU followed by the compressed image), else 0 (the
    caller then reports the primary HDU's ``NAXIS``).
    """
    if hdul[0].header.get("NAXIS") == 2:
        return 0
    for index, hdu in enumerate(hdul):
        if isinstance(hdu, fits.CompImageHDU):
            return index
    return 0


def open_pixels(path: str, hdu: int | None = None) -> Pixels:
    """Read-only pixels of one 2-D image HDU, no pixel read (cached per process).

    ``hdu`` None means the file's image HDU (:func:`image_hdu`). A plain image
    is a read-only memory map; a tile-compressed one a :class:`CompressedImage`.
    The cache is keyed on the file's identity and modification time, so a file
    rewritten in place (a new sample field, an atomic replace) is opened afresh.
    """
    stat = os.stat(path)
    return _open_pixels(path, hdu, stat.st_ino, stat.st_mtime_ns)


@functools.lru_cache(maxsize=128)
def _open_pixels(path: str, hdu: int | None, inode: int, mtime_ns: int) -> Pixels:
    hdul = fits.open(path, memmap=True, lazy_load_hdus=True)
    try:
        index = image_hdu(hdul) if hdu is None else hdu
        if isinstance(hdul[index], fits.CompImageHDU):
            return CompressedImage(path, index, hdul)  # keeps the file open
        data = hdul[index].data
        if data is None or data.ndim != 2:
            raise ValueError(f"{path}: HDU {index} holds no 2-D image")
        # Keep the memmap alive after the HDUList closes; no pixel is read here.
        view = data.view()
    except BaseException:
        hdul.close()
        raise
    hdul.close()
    view.flags.writeable = False
    return view


def window(pixels: Pixels, rows: slice, cols: slice) -> Pixels:
    """The sub-image ``pixels[rows, cols]`` (unit steps), no pixel read."""
    if isinstance(pixels, np.ndarray):
        return pixels[rows, cols]
    return pixels.window(rows, cols)


def read_region(pixels: Pixels, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
    """``pixels[rows, cols]`` (steps allowed) as a read-only array in memory.

    The file pages the read touched are released from this process, so a
    worker reading many regions of many bands holds only what it keeps.
    """
    view = pixels[rows, cols]
    if isinstance(pixels, np.ndarray):
        region = np.array(view)
        release_pages(view)
    else:
        region = view
    region.flags.writeable = False
    return region


def release_pages(array: np.ndarray) -> None:
    """Drop the resident pages of the file mapping under ``array`` from this process.

    Pages of a memory-mapped file that have been read count towards the process's
    resident set until the kernel reclaims them; a stage that streams over many
    bands calls this after each band or chunk so its resident memory stays at the
    size of the chunk. Only the page-aligned byte span that ``array`` covers is
    released, so other threads reading other parts of the same file keep theirs.
    The pages stay in the page cache (no re-read from disk is forced). Arrays not
    backed by a file mapping are left alone.
    """
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if not isinstance(base, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED") or array.size == 0:
        return
    start = array.__array_interface__["data"][0] - np.frombuffer(base, np.uint8).ctypes.data
    steps = list(zip(array.shape, array.strides, strict=True))
    low = start + sum((n - 1) * s for n, s in steps if s < 0)
    high = start + sum((n - 1) * s for n, s in steps if s > 0)
    first = max((low - FAULT_AROUND_BYTES) // mmap.PAGESIZE * mmap.PAGESIZE, 0)
    end = min(high + array.itemsize + FAULT_AROUND_BYTES, len(base))
    if end > first:
        base.madvise(mmap.MADV_DONTNEED, first, end - first)


def _span(index: Any, size: int) -> tuple[range, bool]:
    """Positions ``[0, size)`` selected by one basic index, and whether the axis is kept."""
    if isinstance(index, slice):
        start, stop, step = index.indices(size)
        if step < 0:
            raise IndexError("negative steps are not supported on compressed images")
        return range(start, stop, step), True
    position = int(index)
    if not -size <= position < size:
        raise IndexError(f"index {position} is out of bounds for an axis of size {size}")
    return range(position % size, position % size + 1), False


def _two_indices(key: Any) -> tuple[Any, Any]:
    """A basic numpy index of a 2-D array as ``(rows, cols)`` (``...`` and missing axes filled)."""
    key = key if isinstance(key, tuple) else (key,)
    if Ellipsis in key:
        at = key.index(Ellipsis)
        key = key[:at] + (slice(None),) * (2 - len(key) + 1) + key[at + 1 :]
    if len(key) > 2:
        raise IndexError(f"too many indices for a 2-D image: {len(key)}")
    return (*key, slice(None), slice(None))[:2]


class CompressedImage:
    """Read-only 2-D view of a tile-compressed image HDU (``CompImageHDU``).

    Indexing with integers and slices (positive steps) returns a new array and
    decompresses only the tiles the selection touches, at most
    :data:`COMPRESSED_ROW_BLOCK` rows at a time; :meth:`window` narrows the view
    without reading. The file stays open (memory-mapped) while the object
    lives; pickling re-opens it by path.

    Parameters
    ----------
    path : str
        The FITS file.
    hdu : int
        Index of its compressed image HDU.
    hdul : astropy.io.fits.HDUList
        The open file (memory-mapped).

    Attributes
    ----------
    origin, shape : (int, int)
        Corner ``(y, x)`` and ``(ny, nx)`` of the view in the image.
    dtype : numpy.dtype
        Type of the pixels read (after ``BSCALE``/``BZERO``).
    tile_shape : (int, int)
        ``(rows, cols)`` of the compression tiles (fpack's default: ``(1, nx)``).
    """

    ndim = 2

    def __init__(self, path: str, hdu: int, hdul: fits.HDUList) -> None:
        self.path, self.hdu, self.origin = path, hdu, (0, 0)
        self._hdul = hdul
        self._section = hdul[hdu].section
        self.shape = tuple(int(n) for n in self._section.shape)
        self.tile_shape = tuple(int(n) for n in hdul[hdu].tile_shape)
        if len(self.shape) != 2:
            raise ValueError(f"{path}: HDU {hdu} holds a {len(self.shape)}-D image, not 2-D")
        # One tiny read: the output dtype (after BSCALE/BZERO) and astropy's file map are
        # set up here, once, so threads reading regions later share them read-only.
        self.dtype = np.asarray(self._section[0:1, 0:1]).dtype
        file_map = getattr(getattr(hdul, "_file", None), "_mmap", None)
        self._file_pages = None if file_map is None else np.frombuffer(file_map, np.uint8)

    @property
    def size(self) -> int:
        """Number of pixels in the view."""
        return self.shape[0] * self.shape[1]

    def __repr__(self) -> str:
        return (
            f"CompressedImage({self.path!r}, hdu={self.hdu}, origin={self.origin}, "
            f"shape={self.shape})"
        )

    def __reduce__(self):
        return _reopen_window, (self.path, self.hdu, self.origin, self.shape)

    def window(self, rows: slice, cols: slice) -> CompressedImage:
        """The sub-image ``[rows, cols]`` (unit steps) of this view, no pixel read."""
        (ys, _), (xs, _) = _span(rows, self.shape[0]), _span(cols, self.shape[1])
        if ys.step != 1 or xs.step != 1:
            raise IndexError("a window takes unit-step slices")
        view = object.__new__(CompressedImage)
        view.__dict__.update(self.__dict__)  # same open file, no second set-up read
        view.origin = (self.origin[0] + ys.start, self.origin[1] + xs.start)
        view.shape = (len(ys), len(xs))
        return view

    def __getitem__(self, key: Any) -> np.ndarray:
        key = _two_indices(key)
        (ys, keep_y), (xs, keep_x) = _span(key[0], self.shape[0]), _span(key[1], self.shape[1])
        out = np.empty((len(ys), len(xs)), self.dtype)
        if out.size:
            y0, x0 = self.origin
            cols = slice(x0 + xs.start, x0 + xs.stop, xs.step)
            block = ys.step * math.ceil(COMPRESSED_ROW_BLOCK / ys.step)
            for i, first in enumerate(range(ys.start, ys.stop, block)):
                last = min(first + block, ys.stop)
                rows = slice(y0 + first, y0 + last, ys.step)
                part = self._section[rows, cols]
                n = block // ys.step
                out[i * n : i * n + len(part)] = part
            if self._file_pages is not None:
                release_pages(self._file_pages)
        return out[(slice(None) if keep_y else 0, slice(None) if keep_x else 0)]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The whole view decompressed (memory: the full view)."""
        return self[:, :] if dtype is None else self[:, :].astype(dtype)


def _reopen_window(path: str, hdu: int, origin: tuple[int, int],
                   shape: tuple[int, int]) -> CompressedImage:
    whole = open_pixels(path, hdu)
    return whole.window(slice(origin[0], origin[0] + shape[0]),
                        slice(origin[1], origin[1] + shape[1]))


#: Pixels of an image HDU: a read-only memory map or a tile-compressed image.
Pixels = np.ndarray | CompressedImage


@dataclasses.dataclass(frozen=True)
class RawImage:
    """One input image as listed in the image list: header plus unread pixels.

    Attributes
    ----------
    path : str
        Absolute path of the FITS file.
    hdu : int
        HDU index of the image (:func:`image_hdu`: 0, the primary HDU, as tract7dt
        reads it; a ``.fits.fz`` file's compressed image HDU).
    header : astropy.io.fits.Header
        The image HDU's header.
    data : (ny, nx) ndarray or CompressedImage
        The raw pixels, ADU (:func:`open_pixels`).
    weight_path : str or None
        Absolute path of the band's weight image (its image HDU, same shape), None
        when the image list names none.
    """

    path: str
    hdu: int
    header: fits.Header
    data: Pixels = dataclasses.field(repr=False)
    weight_path: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the image."""
        return (int(self.data.shape[0]), int(self.data.shape[1]))
