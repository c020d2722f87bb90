"""Prepared 7DT frames: per-band calibration values plus lazily read pixels.

A :class:`FrameSet` is what every stage after ingest works on. It holds no pixel
arrays: each :class:`Frame` names its FITS file and opens it (a memory map, or a
tile-compressed image read tile by tile: :mod:`phot7dt.pixel_maps`) when pixels
are asked for, so a 40-band tile costs almost nothing to carry between nodes or
to ship to worker processes. Scaling to the common zero point
and masking are applied when a region is cut (:meth:`FrameSet.cutout`), never to
a whole frame. A band may have a weight image (:mod:`phot7dt.weights`): its
per-pixel noise then comes from that image, read the same way.

Coordinates: every region and pixel position after ingest is in the *working
frame*, the crop box ``[x0, x1) x [y0, y1)`` of the original images, 0-based,
pixel centres at integers (numpy ``[y, x]`` indexing).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from astropy.io import fits

from phot7dt.pixel_maps import Pixels, RawImage, open_pixels, read_region, release_pages, window
from phot7dt.weights import check_weight_settings, to_invvar

if TYPE_CHECKING:
    import pandas as pd
    from astropy.wcs import WCS

__all__ = [
    "Box", "Frame", "FrameSet", "Pixels", "RawImage", "open_pixels", "read_region", "release_pages",
    "roi_box",
]


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
        HDU index of the image (the compressed image HDU of a ``.fits.fz`` file).
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
    weight_path : str or None
        Absolute path of the band's weight image (its image HDU, plain or
        tile-compressed); None: the noise is ``SKYSIG`` on every pixel.
    weight_type : str or None
        Meaning of the weight image's values (:data:`phot7dt.weights.WEIGHT_TYPES`).
    weight_ref : float or None
        ``relative`` weight images: ``w_ref``, the median weight, at which the noise
        is ``SKYSIG``; None otherwise.
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
    weight_path: str | None = None
    weight_type: str | None = None
    weight_ref: float | None = None

    def __post_init__(self) -> None:
        if self.weight_path is not None:
            check_weight_settings(f"band {self.band}", self.weight_type, self.weight_ref)

    @property
    def sky_sigma(self) -> float:
        """Sky noise per pixel on the common scale (at the median depth with a weight image)."""
        return self.skysig * self.scale

    def raw(self) -> Pixels:
        """The whole original image, raw ADU, unread (:func:`~phot7dt.pixel_maps.open_pixels`)."""
        return open_pixels(self.path, self.hdu)

    def weight_map(self) -> Pixels | None:
        """The whole weight image, unread (None without one)."""
        return None if self.weight_path is None else open_pixels(self.weight_path)

    def invvar(self, weights: np.ndarray) -> np.ndarray:
        """float32 inverse variance on the common scale of weight-image pixels (0: no data)."""
        kind, ref = str(self.weight_type), self.weight_ref
        return to_invvar(weights, kind, skysig=self.skysig, scale=self.scale, weight_ref=ref)


def _near_saturation(raw: np.ndarray, level: float, pad: int) -> np.ndarray:
    """Pixels within ``pad`` px (disk) of a pixel at or above ``level``."""
    with np.errstate(invalid="ignore"):
        saturated = raw >= level
    if saturated.any():
        from scipy import ndimage

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
        from astropy.wcs import WCS

        return WCS(fits.Header.fromstring(self.wcs_header))

    def frame(self, band: str) -> Frame:
        """The frame of ``band``."""
        for f in self.frames:
            if f.band == band:
                return f
        raise KeyError(f"no frame for band {band!r}; bands are {self.bands}")

    def raw(self, band: str, box: Box | None = None) -> np.ndarray | Pixels:
        """Raw ADU pixels of the working frame, read-only.

        With ``box``, the pixels of that region are read into memory
        (:func:`~phot7dt.pixel_maps.read_region`: a copy; no file page stays
        resident). Without ``box``, the whole working frame, unread: read its
        regions with :func:`~phot7dt.pixel_maps.read_region`.
        """
        return self._region(self.frame(band).raw(), box)

    def weights(self, band: str, box: Box | None = None) -> np.ndarray | Pixels | None:
        """Weight-image pixels of the working frame, read as :meth:`raw` reads the image.

        In the unit of the band's ``weight_type``; None when the band has no weight image.
        """
        whole = self.frame(band).weight_map()
        return None if whole is None else self._region(whole, box)

    def _region(self, whole: Pixels, box: Box | None) -> np.ndarray | Pixels:
        if box is None:
            return window(whole, *self.crop.slices)
        return read_region(whole, *box.shifted(self.crop.x0, self.crop.y0).slices)

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
            Inverse variance on the common scale, (counts)^-2: from the band's
            weight image when it has one (:meth:`Frame.invvar`; 0 where it has no
            data), else ``1 / sky_sigma**2``; 0 on masked pixels.
        saturated : (n_band, ny, nx) bool ndarray
            Raw pixels at or above the band's saturation level.
        """
        frames = [self.frame(b) for b in (bands or self.bands)]
        ny, nx = box.shape
        images = np.zeros((len(frames), ny, nx), np.float32)
        invvar = np.zeros_like(images)
        saturated = np.zeros(images.shape, bool)
        for i, frame in enumerate(frames):
            finite_level = math.isfinite(frame.saturation_level)
            pad = saturation_pad_pix if mask_saturated and finite_level else 0
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
                    near = _near_saturation(margin, frame.saturation_level, pad)
                    bad |= near[dy : dy + ny, dx : dx + nx]
            if extra_mask is not None:
                bad |= extra_mask
            images[i] = np.where(good, raw * np.float32(frame.scale), 0.0)
            if frame.weight_path is None:
                invvar[i] = np.where(bad, 0.0, np.float32(1.0 / frame.sky_sigma**2))
            else:  # a weight image changes the noise only, never the pixels
                invvar[i] = np.where(bad, 0.0, frame.invvar(self.weights(frame.band, box)))
        return images, invvar, saturated

    def _grown(self, box: Box, pad: int) -> Box:
        """``box`` with a ``pad`` px margin, clipped to the working frame."""
        if pad <= 0:
            return box
        ny, nx = self.shape
        x0, y0 = max(box.x0 - pad, 0), max(box.y0 - pad, 0)
        return Box(x0, y0, min(box.x1 + pad, nx), min(box.y1 + pad, ny))


def roi_box(row: pd.Series) -> Box:
    """Region of interest (base box plus halo) of a patches-table row."""
    return Box(int(row["x0_roi"]), int(row["y0_roi"]), int(row["x1_roi"]), int(row["y1_roi"]))
