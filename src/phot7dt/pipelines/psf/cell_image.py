"""Pixels of one band around one ePSF cell, background-subtracted.

Only the cell plus a margin of half a star cutout (and ``edge_pad``) is read
from the memory-mapped frame, so stars near a cell border keep their whole
cutout; stars still belong to the cell that holds their centre.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import sep

from phot7dt.config.epsf import EpsfParams
from phot7dt.frames import Box, FrameSet

__all__ = ["CellImage", "load_cell_image"]


@dataclasses.dataclass(frozen=True)
class CellImage:
    """One band's background-subtracted pixels around one cell.

    Attributes
    ----------
    cell, region : Box
        The cell and the region read around it (working-frame pixels).
    frame_shape : tuple of int
        ``(ny, nx)`` of the working frame.
    image : (ny, nx) float32 ndarray
        Scaled pixels (common zero point) minus the background; 0 on bad pixels.
    bad : (ny, nx) bool ndarray
        Non-finite pixels.
    saturated : (ny, nx) bool ndarray
        Raw pixels at or above the frame's saturation level.
    seed_saturated : (ny, nx) bool ndarray
        Raw pixels at or above ``SATURATE / gaia_seed_sat_div``.
    sky_sigma : float
        Sky noise per pixel on the common scale.
    gain : float
        Electrons per common-scale count (``EGAIN / scale``).
    background : dict
        Background statistics (median, rms, masked fraction, status).
    """

    cell: Box
    region: Box
    frame_shape: tuple[int, int]
    image: np.ndarray
    bad: np.ndarray
    saturated: np.ndarray
    seed_saturated: np.ndarray
    sky_sigma: float
    gain: float
    background: dict

    def to_region(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Working-frame positions to region pixel coordinates."""
        return np.asarray(x) - self.region.x0, np.asarray(y) - self.region.y0


#: Step between the pixels whose median sets the source-mask level and the reported
#: background median (every 3rd pixel each way: 1/9 of a cell, ~10^5 pixels on a tile).
LEVEL_STRIDE = 3


def _region_around(cell: Box, margin: int, shape: tuple[int, int]) -> Box:
    ny, nx = shape
    return Box(
        max(cell.x0 - margin, 0),
        max(cell.y0 - margin, 0),
        min(cell.x1 + margin, nx),
        min(cell.y1 + margin, ny),
    )


def _grow(mask: np.ndarray, steps: int) -> np.ndarray:
    """``mask`` dilated ``steps`` times by the 3 x 3 square: by a ``2 steps + 1`` square."""
    for axis in (0, 1):
        src, mask = np.moveaxis(mask, axis, 0), mask.copy()
        out = np.moveaxis(mask, axis, 0)
        for d in range(1, steps + 1):
            out[d:] |= src[:-d]
            out[:-d] |= src[d:]
    return mask


def _source_mask(image: np.ndarray, bad: np.ndarray, sky_sigma: float, p: EpsfParams):
    """Bad pixels plus dilated pixels above ``median + k sigma`` (the median of every
    :data:`LEVEL_STRIDE`-th pixel each way: to ~0.01 sigma on a cell)."""
    good = image[::LEVEL_STRIDE, ::LEVEL_STRIDE][~bad[::LEVEL_STRIDE, ::LEVEL_STRIDE]]
    level = (np.median(good) if good.size else 0.0) + p.background_source_mask_sigma * sky_sigma
    sources = (image > level) & ~bad
    if p.background_mask_dilate > 0 and sources.any():
        sources = _grow(sources, p.background_mask_dilate)
    return bad | sources


def _subtract_background(image: np.ndarray, bad: np.ndarray, sky_sigma: float, p: EpsfParams):
    """Subtract a masked SEP background map in place; return its statistics."""
    if not p.background_subtract_patch:
        return {"status": "off", "median": 0.0, "rms": float("nan"), "mask_fraction": 0.0}
    mask = _source_mask(image, bad, sky_sigma, p)
    if mask.all():
        return {"status": "all_masked", "median": 0.0, "rms": float("nan"), "mask_fraction": 1.0}
    box = min(p.background_boxsize, *image.shape)
    bkg = sep.Background(image, mask=mask, bw=box, bh=box,
                         fw=p.background_filtersize, fh=p.background_filtersize)
    back = bkg.back()
    image -= back.astype(np.float32)
    return {
        "status": "ok",
        "median": float(np.median(back[::LEVEL_STRIDE, ::LEVEL_STRIDE])),  # (a smooth map)
        "rms": float(bkg.globalrms),
        "mask_fraction": float(mask.mean()),
    }


def load_cell_image(frames: FrameSet, band: str, cell: Box, p: EpsfParams) -> CellImage:
    """Read, scale and background-subtract one band around ``cell``.

    Parameters
    ----------
    frames : FrameSet
        Working-frame images (memory-mapped).
    band : str
        Band to read.
    cell : Box
        The ePSF cell (working-frame pixels).
    p : EpsfParams
        ``epsf`` parameters (margin, background settings).
    """
    frame = frames.frame(band)
    region = _region_around(cell, p.half_size + p.edge_pad, frames.shape)
    raw = np.array(frames.raw(band, region), dtype=np.float32)
    bad = ~np.isfinite(raw)
    saturated = np.zeros_like(bad)
    seed_saturated = np.zeros_like(bad)
    if math.isfinite(frame.saturation_level):
        saturated = ~bad & (raw >= frame.saturation_level)
    if math.isfinite(frame.saturate):
        seed_saturated = ~bad & (raw >= frame.saturate / p.gaia_seed_sat_div)
    image = np.where(bad, 0.0, raw * np.float32(frame.scale)).astype(np.float32)
    background = _subtract_background(image, bad, frame.sky_sigma, p)
    image[bad] = 0.0
    return CellImage(cell, region, frames.shape, image, bad, saturated, seed_saturated,
                     frame.sky_sigma, frame.egain / frame.scale, background)
