"""Prepared 7DT frames: per-band calibration values plus lazy, memory-mapped pixels.

A :class:`FrameSet` is what every stage after ingest works on. It holds no pixel
arrays: each :class:`Frame` names its FITS file and opens it through a memory
map when pixels are asked for, so a 40-band tile costs almost nothing to carry
between nodes or to ship to worker processes. Scaling to the common zero point
and masking are applied when a region is cut (:meth:`FrameSet.cutout`), never to
a whole frame.

Coordinates: every region and pixel position after ingest is in the *working
frame*, the crop box ``[x0, x1) x [y0, y1)`` of the original images, 0-based,
pixel centres at integers (numpy ``[y, x]`` indexing).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import mmap
import os
from collections.abc import Sequence

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from scipy import ndimage

__all__ = ["Box", "Frame", "FrameSet", "RawImage", "open_pixels", "release_pages"]

#: Bytes the kernel may map around a faulting page of a file (fault-around, and whole
#: large page-cache folios of up to 2 MiB): :func:`release_pages` releases this margin too.
FAULT_AROUND_BYTES = 2 << 20


@dataclasses.dataclass(frozen=True)
class Box:
    """A half-open pixel box ``[x0, x1) x [y0, y1)``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the box."""
        return (self.y1 - self.y0, self.x1 - self.x0)

    @property
    def slices(self) -> tuple[slice, slice]:
        """numpy ``(rows, cols)`` slices of the box."""
        return (slice(self.y0, self.y1), slice(self.x0, self.x1))

    def shifted(self, dx: int, dy: int) -> Box:
        """The same box moved by ``(dx, dy)`` pixels."""
        return Box(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)


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
    low = start + sum((n - 1) * s for n, s in zip(array.shape, array.strides, strict=True) if s < 0)
    high = start + sum((n - 1) * s for n, s in zip(array.shape, array.strides, strict=True) if s > 0)
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
    """

    path: str
    hdu: int
    header: fits.Header
    data: np.ndarray = dataclasses.field(repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the image."""
        return (int(self.data.shape[0]), int(self.data.shape[1]))


@dataclasses.dataclass(frozen=True)
class Frame:
    """One band's image and its calibration values (from the FITS header).

    Attributes
    ----------
    band : str
        ``FILTER`` header value.
    path : str
        Absolute path of the FITS file.
    hdu : int
        HDU index of the image.
    zp_auto : float
        ``ZP_AUTO``, AB magnitude of one ADU per second.
    skysig : float
        ``SKYSIG``, sky noise per pixel, ADU.
    egain : float
        ``EGAIN``, electrons per ADU.
    saturate : float
        ``SATURATE`` in ADU (``inf`` when absent).
    saturation_level : float
        Threshold in raw ADU at and above which a pixel counts as saturated
        (``SATURATE / saturation_divisor``).
    fwhm_pix : float
        Seeing FWHM in pixels from ``PEEING`` or ``SEEING`` (NaN when unknown).
    scale : float
        ``10**(-0.4 (ZP_AUTO - zp_ref))``: raw ADU to common-scale counts.
    """

    band: str
    path: str
    hdu: int
    zp_auto: float
    skysig: float
    egain: float
    saturate: float
    saturation_level: float
    fwhm_pix: float
    scale: float

    @property
    def sky_sigma(self) -> float:
        """Sky noise per pixel on the common scale."""
        return self.skysig * self.scale

    def raw(self) -> np.ndarray:
        """The whole original image as a read-only memory map, raw ADU."""
        return open_pixels(self.path, self.hdu)


def _near_saturation(raw: np.ndarray, level: float, pad: int) -> np.ndarray:
    """Pixels within ``pad`` px (disk) of a pixel at or above ``level``."""
    with np.errstate(invalid="ignore"):
        saturated = raw >= level
    if saturated.any():
        offsets = np.arange(-pad, pad + 1)
        disk = (offsets[:, None] ** 2 + offsets[None, :] ** 2) <= pad**2
        saturated = ndimage.binary_dilation(saturated, structure=disk)
    return saturated


@dataclasses.dataclass(frozen=True)
class FrameSet:
    """All bands of one tile, aligned, with the working-frame crop box.

    Attributes
    ----------
    frames : tuple of Frame
        One per band, in image-list order.
    crop : Box
        Working frame in original-image pixels.
    full_shape : tuple of int
        ``(ny, nx)`` of the original images.
    zp_ref : float
        Common AB zero point of the scaled images.
    wcs_header : str
        The working frame's celestial WCS as a FITS header string.
    """

    frames: tuple[Frame, ...]
    crop: Box
    full_shape: tuple[int, int]
    zp_ref: float
    wcs_header: str

    @property
    def bands(self) -> list[str]:
        """Band names in order."""
        return [f.band for f in self.frames]

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the working frame."""
        return self.crop.shape

    @functools.cached_property
    def wcs(self) -> WCS:
        """Celestial WCS of the working frame."""
        return WCS(fits.Header.fromstring(self.wcs_header))

    def frame(self, band: str) -> Frame:
        """The frame of ``band``."""
        for f in self.frames:
            if f.band == band:
                return f
        raise KeyError(f"no frame for band {band!r}; bands are {self.bands}")

    def raw(self, band: str, box: Box | None = None) -> np.ndarray:
        """Raw ADU pixels of the working frame, read-only.

        With ``box``, the pixels of that region are read into memory (a copy) and
        the file pages they came from are released from this process, so a worker
        cutting many regions of many bands keeps only what it holds. Without
        ``box``, the whole working frame is returned as a memory-mapped view
        (call :func:`release_pages` on what has been read).
        """
        whole = self.frame(band).raw()
        if box is None:
            return whole[self.crop.slices]
        view = whole[box.shifted(self.crop.x0, self.crop.y0).slices]
        pixels = np.array(view)
        release_pages(view)
        pixels.flags.writeable = False
        return pixels

    def cutout(
        self,
        box: Box,
        *,
        bands: Sequence[str] | None = None,
        extra_mask: np.ndarray | None = None,
        mask_saturated: bool = True,
        saturation_pad_pix: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scaled images, inverse variance and saturation masks of one region.

        Parameters
        ----------
        box : Box
            Region in working-frame pixels.
        bands : sequence of str, optional
            Subset and order of bands (all by default).
        extra_mask : (ny, nx) bool ndarray, optional
            Pixels to mask in every band (e.g. the bright-source mask cut to ``box``).
        mask_saturated : bool
            Give saturated pixels zero inverse variance.
        saturation_pad_pix : int
            With ``mask_saturated``, also mask every pixel within this distance
            (disk radius, px) of a saturated pixel of the same band, including
            saturated pixels just outside ``box``; a saturated core and its bleed
            trail are masked with the same ring.

        Returns
        -------
        images : (n_band, ny, nx) float32 ndarray
            Pixels on the common scale; 0 where not finite.
        invvar : (n_band, ny, nx) float32 ndarray
            ``1 / sky_sigma**2`` on good pixels, 0 on masked ones.
        saturated : (n_band, ny, nx) bool ndarray
            Raw pixels at or above the band's saturation level.
        """
        frames = [self.frame(b) for b in (bands or self.bands)]
        ny, nx = box.shape
        images = np.zeros((len(frames), ny, nx), np.float32)
        invvar = np.zeros_like(images)
        saturated = np.zeros(images.shape, bool)
        for i, frame in enumerate(frames):
            pad = saturation_pad_pix if mask_saturated and math.isfinite(frame.saturation_level) else 0
            grown = self._grown(box, pad)  # one read per band: the box and its saturation margin
            dy, dx = box.y0 - grown.y0, box.x0 - grown.x0
            margin = np.asarray(self.raw(frame.band, grown), dtype=np.float32)
            raw = margin[dy : dy + ny, dx : dx + nx]
            good = np.isfinite(raw)
            if math.isfinite(frame.saturation_level):
                saturated[i] = good & (raw >= frame.saturation_level)
            bad = ~good
            if mask_saturated:
                bad |= saturated[i]
                if pad > 0:
                    bad |= _near_saturation(margin, frame.saturation_level, pad)[dy : dy + ny, dx : dx + nx]
            if extra_mask is not None:
                bad |= extra_mask
            images[i] = np.where(good, raw * np.float32(frame.scale), 0.0)
            invvar[i] = np.where(bad, 0.0, np.float32(1.0 / frame.sky_sigma**2))
        return images, invvar, saturated

    def _grown(self, box: Box, pad: int) -> Box:
        """``box`` with a ``pad`` px margin, clipped to the working frame."""
        if pad <= 0:
            return box
        ny, nx = self.shape
        return Box(max(box.x0 - pad, 0), max(box.y0 - pad, 0), min(box.x1 + pad, nx), min(box.y1 + pad, ny))
