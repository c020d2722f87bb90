"""Memory-mapped FITS pixels: input images, lazy HDU maps, release of the pages a read touched.

Owned by :mod:`phot7dt.frames`, which re-exports :class:`RawImage`,
:func:`open_pixels` and :func:`release_pages`; kept apart so that
:mod:`phot7dt.weights` can read weight images without importing the frames.
"""

from __future__ import annotations

import dataclasses
import functools
import mmap
import os

import numpy as np
from astropy.io import fits

__all__ = ["FAULT_AROUND_BYTES", "RawImage", "open_pixels", "release_pages"]

#: Bytes the kernel may map around a faulting page of a file (fault-around, and whole
#: large page-cache folios of up to 2 MiB): :func:`release_pages` releases this margin too.
FAULT_AROUND_BYTES = 2 << 20


def open_pixels(path: str, hdu: int = 0) -> np.ndarray:
    """Read-only memory map of one FITS image HDU (cached per process).

    The cache is keyed on the file's identity and modification time, so a file
    rewritten in place (a new sample field, an atomic replace) is mapped afresh.
    """
    stat = os.stat(path)
    return _open_pixels(path, hdu, stat.st_ino, stat.st_mtime_ns)


@functools.lru_cache(maxsize=128)
def _open_pixels(path: str, hdu: int, inode: int, mtime_ns: int) -> np.ndarray:
    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        data = hdul[hdu].data
        if data is None or data.ndim != 2:
            raise ValueError(f"{path}: HDU {hdu} holds no 2-D image")
        # Keep the memmap alive after the HDUList closes; no pixel is read here.
        view = data.view()
    view.flags.writeable = False
    return view


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


@dataclasses.dataclass(frozen=True)
class RawImage:
    """One input image as listed in the image list: header plus memory-mapped pixels.

    Attributes
    ----------
    path : str
        Absolute path of the FITS file.
    hdu : int
        HDU index of the image (0, the primary HDU, as tract7dt reads it).
    header : astropy.io.fits.Header
        The HDU's header.
    data : (ny, nx) ndarray
        Read-only memory map of the raw pixels, ADU.
    weight_path : str or None
        Absolute path of the band's weight image (primary HDU, same shape), None
        when the image list names none.
    """

    path: str
    hdu: int
    header: fits.Header
    data: np.ndarray = dataclasses.field(repr=False)
    weight_path: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the image."""
        return (int(self.data.shape[0]), int(self.data.shape[1]))
