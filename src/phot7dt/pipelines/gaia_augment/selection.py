"""Geometry and sky matching of the Gaia augmentation: selection box, projection, matching."""

from __future__ import annotations

import numpy as np

from phot7dt.frames import Box, FrameSet

NO_MATCH = -1


def gaia_selection_box(x: np.ndarray, y: np.ndarray, min_size: int, shape: tuple[int, int]) -> Box:
    """Square box around source positions, kept square at the image edges.

    Parameters
    ----------
    x, y : (n,) float ndarray
        Positions of the active sources, working-frame pixels (non-finite ignored).
    min_size : int
        Smallest side, pixels; the side is also at least the larger extent of the sources.
    shape : (ny, nx)
        Working-frame shape.

    Returns
    -------
    Box
        Centred on the sources' bounding-box centre (the frame centre when there
        are none), shifted inward where it crosses an edge, clipped only where
        the frame is smaller than the box.
    """
    ny, nx = shape
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.any():
        xmin, xmax, ymin, ymax = x[ok].min(), x[ok].max(), y[ok].min(), y[ok].max()
        cx, cy = (xmin + xmax) / 2.0, (ymin + ymax) / 2.0
        side = max(float(min_size), float(np.ceil(max(xmax - xmin, ymax - ymin))))
    else:
        cx, cy, side = nx / 2.0, ny / 2.0, float(min_size)
    x0, x1 = _shift_inside(cx - side / 2.0, cx + side / 2.0, nx)
    y0, y1 = _shift_inside(cy - side / 2.0, cy + side / 2.0, ny)
    return Box(x0, y0, x1, y1)


def _shift_inside(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Move ``[lo, hi)`` inside ``[0, size)`` keeping its length; clip if longer."""
    if lo < 0:
        lo, hi = 0.0, hi - lo
    if hi > size:
        lo, hi = lo - (hi - size), float(size)
    return max(0, int(np.floor(lo))), min(size, int(np.ceil(hi)))


def match_rows_to_gaia(
    ra: np.ndarray, dec: np.ndarray, gaia_ra: np.ndarray, gaia_dec: np.ndarray, radius_arcsec: float
) -> np.ndarray:
    """Index of the nearest Gaia star within ``radius_arcsec`` for each row.

    Rows with non-finite RA/DEC, or with no star within the radius, get
    ``NO_MATCH`` (-1). Several rows may take the same star.
    """
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    matched = np.full(len(ra), NO_MATCH, dtype=np.int64)
    ok = np.isfinite(ra) & np.isfinite(dec)
    if not ok.any() or len(gaia_ra) == 0:
        return matched
    rows = SkyCoord(ra=ra[ok] * u.deg, dec=dec[ok] * u.deg)
    stars = SkyCoord(ra=gaia_ra * u.deg, dec=gaia_dec * u.deg)
    idx, sep2d, _ = rows.match_to_catalog_sky(stars)
    matched[ok] = np.where(sep2d.to_value(u.arcsec) <= radius_arcsec, idx, NO_MATCH)
    return matched


def synphot_flux(mag: np.ndarray, zp_ref: float) -> np.ndarray:
    """Common-scale flux ``10**((zp_ref - mag) / 2.5)``; NaN where ``mag`` is not finite."""
    mag = np.asarray(mag, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(np.isfinite(mag), 10.0 ** ((zp_ref - mag) / 2.5), np.nan)


def sky_to_pixel(
    frames: FrameSet, ra: np.ndarray, dec: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Working-frame pixels of sky positions; NaN for points far outside the frame."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    if len(ra) == 0:
        return np.empty(0), np.empty(0)
    ny, nx = frames.shape
    wcs = frames.wcs
    centre = wcs.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
    corner = wcs.pixel_to_world(0.0, 0.0)
    reach = 2.0 * centre.separation(corner)
    near = SkyCoord(ra=ra * u.deg, dec=dec * u.deg).separation(centre) <= reach
    x = np.full(len(ra), np.nan)
    y = np.full(len(ra), np.nan)
    if near.any():
        x[near], y[near] = wcs.all_world2pix(ra[near], dec[near], 0, quiet=True)
    return x, y
