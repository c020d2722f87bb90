"""White-stack helpers of the ingest stage: one row chunk of the coadd, and its header."""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from phot7dt.frames import Box, FrameSet


def white_chunk(frames: FrameSet, chunk: Box) -> tuple[np.ndarray, np.ndarray]:
    """White stack and its sigma over one working-frame region, float32 (see ``build_white_stack``).

    Sums are accumulated in float64 over the region only; each band's pixels (and
    weight-image pixels) are read as a copy of the region (:meth:`FrameSet.raw`).
    """
    weighted_sum = np.zeros(chunk.shape, np.float64)
    weight_sum = np.zeros(chunk.shape, np.float64)
    for frame in frames.frames:
        pixels = np.asarray(frames.raw(frame.band, chunk), dtype=np.float32)
        good = np.isfinite(pixels)
        if frame.weight_path is None:
            weight = 1.0 / frame.sky_sigma**2
            weighted_sum += np.where(good, pixels * np.float32(frame.scale * weight), 0.0)
            weight_sum += good * weight
        else:  # per-pixel inverse variance from the band's weight image
            invvar = frame.invvar(frames.weights(frame.band, chunk))
            good &= invvar > 0
            weighted_sum += np.where(good, pixels * np.float32(frame.scale) * invvar, 0.0)
            weight_sum += np.where(good, invvar, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        white = np.where(weight_sum > 0, weighted_sum / weight_sum, np.nan)
        sigma = np.where(weight_sum > 0, weight_sum**-0.5, np.nan)
    return white.astype(np.float32), sigma.astype(np.float32)


def white_header(frames: FrameSet) -> fits.Header:
    """The working WCS plus ``ZP_REF``, ``NBANDS``, ``CROPX0``, ``CROPY0``."""
    header = fits.Header.fromstring(frames.wcs_header)
    header["ZP_REF"] = (frames.zp_ref, "AB zero point of the common scale")
    header["NBANDS"] = (len(frames.frames), "bands in the coadd")
    header["CROPX0"] = (frames.crop.x0, "working frame x0 in original pixels")
    header["CROPY0"] = (frames.crop.y0, "working frame y0 in original pixels")
    return header
