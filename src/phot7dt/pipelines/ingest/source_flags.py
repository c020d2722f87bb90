"""Crop and saturation flags of catalog sources in the working frame."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from phot7dt.frames import FrameSet, release_pages
from phot7dt.pipelines.ingest.params import SourceSaturationCutParams

logger = logging.getLogger(__name__)


def working_positions(
    catalog: pd.DataFrame, frames: FrameSet
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Working-frame pixel positions of ``RA``/``DEC`` and which rows have valid coordinates.

    Returns
    -------
    x, y : (n,) float ndarray
        0-based working-frame pixels; NaN where the coordinates are invalid.
    valid : (n,) bool ndarray
        Finite RA and DEC with ``|DEC| <= 90``.
    """
    ra = catalog["RA"].to_numpy(dtype=float)
    dec = catalog["DEC"].to_numpy(dtype=float)
    valid = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
    x = np.full(len(catalog), np.nan)
    y = np.full(len(catalog), np.nan)
    if valid.any():
        x[valid], y[valid] = frames.wcs.all_world2pix(ra[valid], dec[valid], 0, quiet=True)
    return x, y, valid


def _inside(x: np.ndarray, y: np.ndarray, x0: int, y0: int, nx: int, ny: int) -> np.ndarray:
    """Rounded position inside ``[x0, x0 + nx) x [y0, y0 + ny)`` (NaN is outside)."""
    with np.errstate(invalid="ignore"):
        xr, yr = np.floor(x + 0.5), np.floor(y + 0.5)
        return (xr >= x0) & (xr < x0 + nx) & (yr >= y0) & (yr < y0 + ny)


def _disk(radius: float) -> tuple[int, np.ndarray]:
    half = int(math.floor(radius))
    offsets = np.arange(-half, half + 1)
    return half, (offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2


def saturated_near(
    frames: FrameSet, band: str, x: np.ndarray, y: np.ndarray, radius: float
) -> np.ndarray:
    """Whether a raw pixel of ``band`` at or above its saturation level lies within
    ``radius`` pixels of each rounded working-frame position.

    Reads only a ``(2r+1)^2`` window of the memory-mapped band per source.
    """
    level = frames.frame(band).saturation_level
    hits = np.zeros(len(x), bool)
    if not math.isfinite(level) or len(x) == 0:
        return hits
    raw = frames.raw(band)
    ny, nx = raw.shape
    half, disk = _disk(radius)
    centres = zip(np.floor(x + 0.5).astype(int), np.floor(y + 0.5).astype(int), strict=True)
    for i, (xc, yc) in enumerate(centres):
        xa, xb = max(xc - half, 0), min(xc + half + 1, nx)
        ya, yb = max(yc - half, 0), min(yc + half + 1, ny)
        window = raw[ya:yb, xa:xb]
        mask = disk[ya - yc + half : yb - yc + half, xa - xc + half : xb - xc + half]
        hits[i] = bool(np.any((window >= level) & mask))
    release_pages(raw)
    return hits


def _saturation_flags(
    frames: FrameSet,
    x: np.ndarray,
    y: np.ndarray,
    active: np.ndarray,
    params: SourceSaturationCutParams,
) -> np.ndarray:
    flags = np.zeros(len(x), bool)
    if not params.enabled:
        logger.info("source_saturation_cut.enabled is false: no source flagged for saturation")
        return flags
    per_band = [
        saturated_near(frames, band, x[active], y[active], params.radius_pix)
        for band in tqdm(frames.bands, desc="saturation cut", unit="band")
    ]
    combine = np.all if params.require_all_bands else np.any
    flags[active] = combine(np.vstack(per_band), axis=0)
    return flags


def _reasons(
    invalid: np.ndarray, outside: np.ndarray, crop: np.ndarray, saturation: np.ndarray
) -> list[str]:
    named = (
        ("invalid_coordinates", invalid),
        ("outside_image", outside),
        ("crop", crop),
        ("saturation", saturation),
    )
    return [",".join(name for name, flags in named if flags[i]) for i in range(len(invalid))]


def flag_catalog(
    catalog: pd.DataFrame, frames: FrameSet, params: SourceSaturationCutParams
) -> pd.DataFrame:
    """``catalog`` plus positions and ``excluded_*`` columns (see ``nodes.flag_sources``)."""
    x, y, valid = working_positions(catalog, frames)
    ny, nx = frames.shape
    full_ny, full_nx = frames.full_shape
    in_image = _inside(x, y, -frames.crop.x0, -frames.crop.y0, full_nx, full_ny)
    in_work = _inside(x, y, 0, 0, nx, ny)
    saturation = _saturation_flags(frames, x, y, in_work, params)
    flagged = catalog.copy()
    flagged["x_pix_white"] = x
    flagged["y_pix_white"] = y
    flagged["excluded_crop"] = ~in_work
    flagged["excluded_saturation"] = saturation
    flagged["excluded_any"] = ~in_work | saturation
    flagged["excluded_reason"] = _reasons(
        ~valid, valid & ~in_image, in_image & ~in_work, saturation
    )
    logger.info(
        "%d sources: %d active, %d invalid coordinates, %d outside the image, "
        "%d in the crop margin, %d near saturation",
        len(flagged),
        int((~flagged["excluded_any"]).sum()),
        int((~valid).sum()),
        int((valid & ~in_image).sum()),
        int((in_image & ~in_work).sum()),
        int(saturation.sum()),
    )
    return flagged
