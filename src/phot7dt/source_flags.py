"""Crop and saturation flags of catalog sources in the working frame."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from phot7dt.config.ingest import SourceSaturationCutParams
from phot7dt.frames import FrameSet, Pixels, read_region
from phot7dt.progress import progress

logger = logging.getLogger(__name__)

#: Half size (px) of the window in which a saturated region touching a core is counted.
COUNT_HALF_PIX = 64
#: Rows of a band read at a time when looking for saturated pixels.
SCAN_ROWS = 256


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


def _saturated_pixels(raw: Pixels, level: float) -> np.ndarray:
    """``(n, 2)`` int ``(x, y)`` of the pixels at or above ``level``, read in row strips."""
    found = []
    for y0 in range(0, raw.shape[0], SCAN_ROWS):
        saturated = read_region(raw, slice(y0, y0 + SCAN_ROWS)) >= level
        rows = np.flatnonzero(saturated.any(axis=1))
        ys, xs = np.nonzero(saturated[rows])
        found.append(np.column_stack([xs, rows[ys] + y0]))
    return np.concatenate(found) if found else np.zeros((0, 2), np.int64)


def _nearest_sq_distance(pixels: np.ndarray, xc: np.ndarray, yc: np.ndarray,
                         reach: float) -> np.ndarray:
    """Squared distance (integer pixels) from each ``(xc, yc)`` to its nearest of ``pixels``.

    Exact up to ``reach`` pixels; larger distances come back as ``inf``.
    """
    from scipy.spatial import cKDTree
    _, nearest = cKDTree(pixels).query(np.column_stack([xc, yc]), k=1,
                                       distance_upper_bound=reach + 1.0)
    found = nearest < len(pixels)
    d2 = np.full(len(xc), np.inf)
    px, py = pixels[nearest[found], 0], pixels[nearest[found], 1]
    d2[found] = (px - xc[found]) ** 2 + (py - yc[found]) ** 2
    return d2


def _core_region_size(raw: Pixels, xc: int, yc: int, core: np.ndarray, level: float) -> int:
    """Pixels of the 8-connected saturated regions reaching into ``core`` around ``(xc, yc)``,
    counted within :data:`COUNT_HALF_PIX` of the position (bleed trails included)."""
    from scipy import ndimage
    ny, nx = raw.shape
    half = max(COUNT_HALF_PIX, core.shape[0] // 2)
    xa, xb = max(xc - half, 0), min(xc + half + 1, nx)
    ya, yb = max(yc - half, 0), min(yc + half + 1, ny)
    above = read_region(raw, slice(ya, yb), slice(xa, xb)) >= level
    labels, _ = ndimage.label(above, structure=np.ones((3, 3), bool))
    r = core.shape[0] // 2
    cx0, cy0 = max(xc - r, xa), max(yc - r, ya)
    cx1, cy1 = min(xc + r + 1, xb), min(yc + r + 1, yb)
    in_core = core[cy0 - yc + r : cy1 - yc + r, cx0 - xc + r : cx1 - xc + r]
    touched = np.unique(labels[cy0 - ya : cy1 - ya, cx0 - xa : cx1 - xa][in_core])
    touched = touched[touched > 0]
    return int(np.isin(labels, touched).sum()) if touched.size else 0


def band_saturation(
    frames: FrameSet, band: str, x: np.ndarray, y: np.ndarray, radius: float, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """Saturation around each rounded working-frame position in one band.

    A raw pixel is saturated at or above the band's saturation level. Reads
    the band once in row strips to find its saturated pixels; a source's disk holds
    one when the nearest saturated pixel lies within the radius (a k-d tree query
    for all sources at once). The regions touching a core are then labelled in a
    small window around each such source.

    Returns
    -------
    near : (n,) bool ndarray
        A saturated pixel lies within ``radius`` pixels (tract7dt's exclusion test).
    n_sat_pix : (n,) int ndarray
        Size of the saturated regions whose ``pad``-pixel masking ring covers the
        position (the source's core is masked); 0 when the core is clean.
    """
    level = frames.frame(band).saturation_level
    near = np.zeros(len(x), bool)
    n_sat = np.zeros(len(x), np.int64)
    if not math.isfinite(level) or len(x) == 0:
        return near, n_sat
    raw = frames.raw(band)
    pixels = _saturated_pixels(raw, level)
    if not len(pixels):
        return near, n_sat
    xc, yc = np.floor(x + 0.5).astype(np.int64), np.floor(y + 0.5).astype(np.int64)
    d2 = _nearest_sq_distance(pixels, xc, yc, max(radius, pad))
    near = d2 <= radius**2
    _, core = _disk(pad)
    for i in np.nonzero(d2 <= pad**2)[0]:
        n_sat[i] = _core_region_size(raw, int(xc[i]), int(yc[i]), core, level)
    return near, n_sat


def _saturation(
    frames: FrameSet,
    x: np.ndarray,
    y: np.ndarray,
    active: np.ndarray,
    params: SourceSaturationCutParams,
) -> tuple[np.ndarray, pd.DataFrame]:
    """``excluded_saturation`` (exclude mode) and the ``n_sat_pix_{band}`` columns."""
    counts = pd.DataFrame(
        {f"n_sat_pix_{b}": pd.array([pd.NA] * len(x), dtype="Int64") for b in frames.bands}
    )
    excluded = np.zeros(len(x), bool)
    if not params.enabled:
        logger.info("source_saturation_cut.enabled is false: no source flagged for saturation")
        return excluded, counts
    per_band = [
        band_saturation(
            frames, b, x[active], y[active], params.radius_pix, params.saturation_core_pad_pix
        )
        for b in progress(frames.bands, desc="saturation cut", unit="band")
    ]
    for band, (_, n_sat) in zip(frames.bands, per_band, strict=True):
        counts.loc[active, f"n_sat_pix_{band}"] = n_sat
    if params.mode == "exclude":
        combine = np.all if params.require_all_bands else np.any
        excluded[active] = combine(np.vstack([near for near, _ in per_band]), axis=0)
    return excluded, counts


def saturated_bands(counts: pd.DataFrame, bands: list[str]) -> list[str]:
    """Comma list of the bands with ``n_sat_pix_{band} > 0`` per row ("" when none)."""
    table = np.column_stack(
        [counts[f"n_sat_pix_{b}"].fillna(0).to_numpy(np.int64) > 0 for b in bands]
    ) if bands else np.zeros((len(counts), 0), bool)
    return [",".join(b for b, on in zip(bands, row, strict=True) if on) for row in table]


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
    """``catalog`` plus positions, ``excluded_*`` and saturation columns.

    Added columns: ``x_pix_white``, ``y_pix_white``, ``excluded_crop``,
    ``excluded_saturation`` (``exclude`` mode only), ``excluded_any``,
    ``excluded_reason``, ``saturated_bands`` (comma list of the bands whose
    saturation mask covers the source's core, "" when none) and
    ``n_sat_pix_{band}`` (Int64, saturated pixels of the regions covering the
    core; missing where not measured: outside the working frame, or the cut
    disabled). See :class:`SourceSaturationCutParams`.
    """
    x, y, valid = working_positions(catalog, frames)
    ny, nx = frames.shape
    full_ny, full_nx = frames.full_shape
    in_image = _inside(x, y, -frames.crop.x0, -frames.crop.y0, full_nx, full_ny)
    in_work = _inside(x, y, 0, 0, nx, ny)
    saturation, counts = _saturation(frames, x, y, in_work, params)
    flagged = catalog.copy()
    flagged["x_pix_white"] = x
    flagged["y_pix_white"] = y
    flagged["excluded_crop"] = ~in_work
    flagged["excluded_saturation"] = saturation
    flagged["excluded_any"] = ~in_work | saturation
    flagged["excluded_reason"] = _reasons(
        ~valid, valid & ~in_image, in_image & ~in_work, saturation
    )
    flagged["saturated_bands"] = saturated_bands(counts, frames.bands)
    for column in counts.columns:
        flagged[column] = counts[column].to_numpy()
    n_core = int((flagged["saturated_bands"] != "").sum())
    logger.info(
        "%d sources: %d active, %d invalid coordinates, %d outside the image, "
        "%d in the crop margin, %d excluded near saturation; %d with a saturated core "
        "(source_saturation_cut.mode = %s)",
        len(flagged),
        int((~flagged["excluded_any"]).sum()),
        int((~valid).sum()),
        int((valid & ~in_image).sum()),
        int((in_image & ~in_work).sum()),
        int(saturation.sum()),
        n_core,
        params.mode,
    )
    return flagged
