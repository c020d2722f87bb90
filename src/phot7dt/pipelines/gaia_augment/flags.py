"""Crop and saturation exclusion flags for positions added after ingest (injected Gaia stars).

The tests are ingest's: a position outside the working frame is ``crop``; a
position with a saturated raw pixel within ``radius_pix`` of its rounded
position, in any band (or in all bands with ``require_all_bands``), is
``saturation``. Only small windows around each position are read.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from phot7dt.frames import Box, FrameSet


def disk_offsets(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer ``(dy, dx)`` offsets of the pixels within ``radius`` of a centre pixel."""
    r = int(math.floor(radius))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = dx**2 + dy**2 <= radius**2
    return dy[inside], dx[inside]


def saturated_near(
    frames: FrameSet, x: np.ndarray, y: np.ndarray, radius: float, require_all_bands: bool
) -> np.ndarray:
    """Whether each position has a saturated pixel within ``radius`` pixels.

    Parameters
    ----------
    frames : FrameSet
        Raw pixels and per-band ``saturation_level`` (ADU).
    x, y : (n,) float ndarray
        Working-frame positions; non-finite or off-frame positions give False.
    radius : float
        Disk radius around the rounded position, pixels.
    require_all_bands : bool
        Saturated in every band (True) or in any band (False).

    Returns
    -------
    (n,) bool ndarray
    """
    ny, nx = frames.shape
    dy, dx = disk_offsets(radius)
    levels = {b: frames.frame(b).saturation_level for b in frames.bands}
    bands = [b for b, level in levels.items() if math.isfinite(level)]
    out = np.zeros(len(x), dtype=bool)
    if not bands:
        return out
    for i, (xi, yi) in enumerate(zip(x, y, strict=True)):
        if not (np.isfinite(xi) and np.isfinite(yi)):
            continue
        ix, iy = int(round(xi)), int(round(yi))
        px, py = ix + dx, iy + dy
        keep = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
        if not keep.any():
            continue
        px, py = px[keep], py[keep]
        window = Box(int(px.min()), int(py.min()), int(px.max()) + 1, int(py.max()) + 1)
        hits = [
            bool(np.any(frames.raw(b, window)[py - window.y0, px - window.x0] >= levels[b]))
            for b in bands
        ]
        # A band without a saturation level never saturates, so "all bands" cannot hold.
        out[i] = (len(bands) == len(levels) and all(hits)) if require_all_bands else any(hits)
    return out


def exclusion_flags(
    frames: FrameSet,
    x: np.ndarray,
    y: np.ndarray,
    *,
    saturation_cut: bool,
    radius_pix: float,
    require_all_bands: bool,
) -> pd.DataFrame:
    """``excluded_crop``, ``excluded_saturation``, ``excluded_any``, ``excluded_reason``.

    ``excluded_reason`` is the comma-separated list of reasons, "" when active.
    """
    ny, nx = frames.shape
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(x) & np.isfinite(y) & (x >= 0) & (x < nx) & (y >= 0) & (y < ny)
    crop = ~inside
    saturation = (
        saturated_near(frames, x, y, radius_pix, require_all_bands)
        if saturation_cut
        else np.zeros(len(x), dtype=bool)
    )
    reasons = [
        ",".join(name for name, flag in (("crop", c), ("saturation", s)) if flag)
        for c, s in zip(crop, saturation, strict=True)
    ]
    return pd.DataFrame(
        {
            "excluded_crop": crop,
            "excluded_saturation": saturation,
            "excluded_any": crop | saturation,
            "excluded_reason": pd.Series(reasons, dtype=str),
        }
    )
