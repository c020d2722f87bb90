"""Cutouts of a cell's accepted PSF stars, each minus its local annulus background.

A star's local background (``star_local_bkg_subtract``) is the sigma-clipped
median of its cutout's valid pixels between ``star_local_bkg_annulus_rin_pix``
and ``star_local_bkg_annulus_rout_pix`` (at most half a cutout less one pixel)
of its centre, clipped at ``star_local_bkg_sigma`` around the median with the
standard deviation, at most 5 times (``astropy.stats.sigma_clipped_stats``'s
rule); fewer than ``star_local_bkg_minpix`` annulus pixels leave the cutout as
it is. All stars are measured at once.
"""

from __future__ import annotations

import warnings

import numpy as np

from phot7dt.config.epsf import EpsfParams
from phot7dt.pipelines.psf.cell_image import CellImage
from phot7dt.pipelines.psf.epsf_stack import StarCutouts

__all__ = ["annulus_backgrounds", "clipped_medians", "star_cutouts"]

#: Sigma-clipping passes at most (astropy's default).
CLIP_ITERATIONS = 5


def _medians(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Median of the kept values of each row (NaN for rows without any), ``(S, 1)``."""
    count = keep.sum(axis=1)
    ordered = np.sort(np.where(keep, values, np.inf), axis=1)
    rows = np.arange(len(values))
    lo, hi = np.maximum(count - 1, 0) // 2, np.maximum(count, 1) // 2
    median = (ordered[rows, lo] + ordered[rows, hi]) / 2
    return np.where(count > 0, median, np.nan)[:, None]


def clipped_medians(values: np.ndarray, sigma: float) -> np.ndarray:
    """Sigma-clipped median of each row of ``values`` (NaN entries are not data).

    Each pass keeps the values within ``sigma`` standard deviations of the
    median of the values kept so far; rows stop changing when a pass keeps
    them all, and there are at most :data:`CLIP_ITERATIONS` passes.
    """
    keep = np.isfinite(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(CLIP_ITERATIONS):
            centre = _medians(values, keep)
            count = keep.sum(axis=1, keepdims=True)
            mean = np.where(keep, values, 0.0).sum(axis=1, keepdims=True) / count
            var = np.where(keep, (values - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count
            spread = np.sqrt(var) * sigma
            new = keep & (values >= centre - spread) & (values <= centre + spread)
            if np.array_equal(new, keep):
                break
            keep = new
        return _medians(values, keep)[:, 0]


def annulus_backgrounds(data: np.ndarray, bad: np.ndarray, cx: np.ndarray, cy: np.ndarray,
                        p: EpsfParams) -> np.ndarray:
    """Local background of each cutout (see module doc); NaN with too few annulus pixels.

    ``data`` and ``bad`` are ``(S, n, n)``; ``cx``, ``cy`` the star centres in cutout pixels.
    """
    n = data.shape[1]
    r_out = min(p.star_local_bkg_annulus_rout_pix, p.half_size - 1)
    yy, xx = np.indices((n, n))
    r = np.hypot(xx - cx[:, None, None], yy - cy[:, None, None])
    ring = (r >= p.star_local_bkg_annulus_rin_pix) & (r <= r_out) & ~bad
    counts = ring.sum(axis=(1, 2))
    star, iy, ix = np.nonzero(ring)
    slot = np.arange(len(star)) - np.repeat(np.cumsum(counts) - counts, counts)
    values = np.full((len(data), max(int(counts.max(initial=0)), 1)), np.nan)
    values[star, slot] = data[star, iy, ix]
    medians = clipped_medians(values, p.star_local_bkg_sigma)
    return np.where(counts >= p.star_local_bkg_minpix, medians, np.nan)


def star_cutouts(ci: CellImage, xs, ys, p: EpsfParams) -> tuple[StarCutouts, dict]:
    """Background-subtracted cutouts of accepted stars (working-frame positions).

    Stars whose valid pixels do not sum to a positive flux are left out. The
    summary holds the number of stars (``n``), those with a local background
    (``n_ok``) and the median of their backgrounds (``median``).
    """
    half, size = p.half_size, p.cutout_size
    x, y = ci.to_region(np.asarray(xs, float), np.asarray(ys, float))
    ix, iy = np.floor(x + 0.5).astype(int), np.floor(y + 0.5).astype(int)
    offsets = np.arange(size) - half
    pick = ((iy[:, None] + offsets)[:, :, None], (ix[:, None] + offsets)[:, None, :])
    data, bad = ci.image[pick].astype(np.float64), ci.bad[pick]
    cx, cy = x - (ix - half), y - (iy - half)
    levels = np.full(len(x), np.nan)
    if p.star_local_bkg_subtract and len(x):
        levels = annulus_backgrounds(data, bad, cx, cy, p)
        data -= np.nan_to_num(levels)[:, None, None]
    data[bad] = 0.0
    flux = data.sum(axis=(1, 2))
    keep = flux > 0
    origin = np.column_stack([ix - half + ci.region.x0, iy - half + ci.region.y0])
    stars = StarCutouts(data[keep], bad[keep], cx[keep], cy[keep], flux[keep], origin[keep])
    ok = levels[np.isfinite(levels)] if p.star_local_bkg_subtract else levels[:0]
    n = len(x) if p.star_local_bkg_subtract else 0
    summary = {"n": n, "n_ok": len(ok), "median": float(np.median(ok)) if len(ok) else float("nan")}
    return stars, summary
