"""PSF-star candidates of one cell: SEP detections and GaiaXP seeds.

Every candidate that lies in the cell is kept in the returned table with the
reason it was rejected ("" when accepted), so the QA plots can show why a cell
has few stars. Rules (tract7dt's, see ``epsf`` parameters):

- SEP candidates: detections at ``thresh_sigma`` x sky sigma, ``minarea``
  pixels; a/b within ``q_range``; not deblended or truncated by SEP.
- GaiaXP seeds: ``mag_{band}`` within the magnitude window; no raw pixel at or
  above ``SATURATE / gaia_seed_sat_div`` within ``gaia_seed_sat_r``; snapped to
  the nearest unused SEP detection within ``gaia_match_r_pix`` (whose a/b must
  then be in range); forced-aperture S/N >= ``gaia_snr_min`` with radius
  ``k * FWHM`` clipped to ``[rmin, rmax]``.
- Both: a whole cutout (plus ``edge_pad``) inside the frame, no saturated pixel
  within ``star_sat_check_r``, no bad pixel within 2 FWHM of the centre.
- Accepted in order (Gaia seeds in catalog order, then SEP candidates brightest
  first) if at least ``min_sep`` from every star accepted before, up to
  ``max_stars``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import sep

from phot7dt.config.epsf import EpsfParams
from phot7dt.pipelines.psf.cell_image import CellImage

__all__ = ["CANDIDATE_COLUMNS", "select_stars"]

CANDIDATE_COLUMNS = ["x", "y", "flux", "q", "origin", "reason"]
#: FWHM (pixels) assumed for aperture radii and core checks when the header has none.
DEFAULT_FWHM_PIX = 4.0


class _Detections:
    """SEP detections in region pixel coordinates (arrays of equal length)."""

    def __init__(self, x, y, flux, q, blended):
        self.x, self.y, self.flux, self.q, self.blended = x, y, flux, q, blended

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index) -> _Detections:
        return _Detections(self.x[index], self.y[index], self.flux[index], self.q[index],
                           self.blended[index])


def _detect(ci: CellImage, p: EpsfParams) -> _Detections:
    """SEP detections in region pixel coordinates."""
    objects = sep.extract(
        ci.image, p.thresh_sigma, err=ci.sky_sigma, mask=ci.bad, minarea=p.minarea,
        deblend_nthresh=32, deblend_cont=0.001, clean=True, clean_param=1.0,
    )
    b = np.maximum(objects["b"], 1e-6)
    return _Detections(objects["x"].astype(float), objects["y"].astype(float),
                       objects["flux"].astype(float), (objects["a"] / b).astype(float),
                       (objects["flag"] & (sep.OBJ_MERGED | sep.OBJ_TRUNC)) != 0)


def _in_cell(ci: CellImage, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Region positions whose nearest pixel lies inside the cell."""
    xw, yw = np.floor(x + 0.5) + ci.region.x0, np.floor(y + 0.5) + ci.region.y0
    c = ci.cell
    return (xw >= c.x0) & (xw < c.x1) & (yw >= c.y0) & (yw < c.y1)


def _box_any(mask: np.ndarray, ix: int, iy: int, r: int) -> bool:
    return bool(mask[max(iy - r, 0) : iy + r + 1, max(ix - r, 0) : ix + r + 1].any())


def _position_problem(ci: CellImage, x: float, y: float, p: EpsfParams, fwhm: float) -> str:
    """Why a star at region ``(x, y)`` cannot be used ("" when it can)."""
    ny, nx = ci.image.shape
    fny, fnx = ci.frame_shape
    need = p.half_size + p.edge_pad
    ix, iy = int(math.floor(x + 0.5)), int(math.floor(y + 0.5))
    xw, yw = ci.region.x0 + ix, ci.region.y0 + iy
    inside_frame = need <= xw < fnx - need and need <= yw < fny - need
    inside_region = p.half_size <= ix < nx - p.half_size and p.half_size <= iy < ny - p.half_size
    if not (inside_frame and inside_region):
        return "edge"
    if _box_any(ci.saturated, ix, iy, p.saturation_check_radius):
        return "saturated"
    core = max(int(math.ceil(2.0 * fwhm)), 2)
    patch = ci.bad[iy - core : iy + core + 1, ix - core : ix + core + 1]
    disk = _disk(core)
    if patch.shape == disk.shape and (patch & disk).any():
        return "bad_pixels"
    return ""


@functools.lru_cache(maxsize=8)
def _disk(radius: int) -> np.ndarray:
    yy, xx = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return xx**2 + yy**2 <= radius**2


def _forced_snr(ci: CellImage, x: float, y: float, p: EpsfParams, fwhm: float) -> float:
    radius = min(max(p.gaia_forced_k_fwhm * fwhm, p.gaia_forced_rmin_pix), p.gaia_forced_rmax_pix)
    radius = min(radius, p.half_size - 2)
    flux, err, flag = sep.sum_circle(ci.image, [x], [y], radius, err=ci.sky_sigma, mask=ci.bad)
    if flag[0] != 0 or not err[0] > 0:
        return float("nan")
    return float(flux[0] / err[0])


def _sep_candidates(ci: CellImage, det: _Detections, p: EpsfParams, fwhm: float) -> list[tuple]:
    """SEP detections in the cell with their rejection reasons, brightest first."""
    q_lo, q_hi = p.q_range
    inside = np.nonzero(_in_cell(ci, det.x, det.y))[0]
    rows = []
    for i in inside[np.argsort(-det.flux[inside], kind="stable")]:
        x, y, q = float(det.x[i]), float(det.y[i]), float(det.q[i])
        if det.blended[i]:
            reason = "blended"
        elif not q_lo <= q <= q_hi:
            reason = "roundness"
        else:
            reason = _position_problem(ci, x, y, p, fwhm)
        rows.append((x, y, float(det.flux[i]), q, "sep", reason))
    return rows


def _snap(det: _Detections, used: np.ndarray, x: float, y: float, radius: float) -> int | None:
    """Index of the nearest unused detection within ``radius`` of ``(x, y)``."""
    if not len(det):
        return None
    d = np.hypot(det.x - x, det.y - y)
    d[used] = np.inf
    i = int(np.argmin(d))
    return i if d[i] <= radius else None


def _seed_row(ci, det: _Detections, used, x, y, p, fwhm) -> tuple:
    """One GaiaXP seed (region coordinates): position after snapping and reason."""
    flux = q = float("nan")
    ix, iy = int(math.floor(x + 0.5)), int(math.floor(y + 0.5))
    if _box_any(ci.seed_saturated, ix, iy, p.gaia_seed_sat_r):
        return (x, y, flux, q, "gaia", "saturated")
    if p.gaia_snap_to_sep:
        i = _snap(det, used, x, y, p.gaia_match_r_pix)
        if i is not None:
            used[i] = True
            x, y, flux, q = float(det.x[i]), float(det.y[i]), float(det.flux[i]), float(det.q[i])
            if det.blended[i]:
                return (x, y, flux, q, "gaia", "blended")
            if not p.q_range[0] <= q <= p.q_range[1]:
                return (x, y, flux, q, "gaia", "roundness")
    problem = _position_problem(ci, x, y, p, fwhm)
    if problem:
        return (x, y, flux, q, "gaia", problem)
    snr = _forced_snr(ci, x, y, p, fwhm)
    return (x, y, flux, q, "gaia", "" if snr >= p.gaia_snr_min else "low_snr")


def _gaia_candidates(ci, det: _Detections, used, seeds: pd.DataFrame, p, fwhm) -> list[tuple]:
    """GaiaXP seeds (working-frame ``x``, ``y``, ``mag``) in the cell, in catalog order."""
    sx, sy = ci.to_region(seeds["x"].to_numpy(float), seeds["y"].to_numpy(float))
    mags = seeds["mag"].to_numpy(float)
    window = (mags >= p.gaia_mag_min) & (mags <= p.gaia_mag_max) & np.isfinite(sx) & np.isfinite(sy)
    keep = window & _in_cell(ci, np.nan_to_num(sx), np.nan_to_num(sy))
    return [_seed_row(ci, det, used, float(x), float(y), p, fwhm)
            for x, y in zip(sx[keep], sy[keep], strict=True)]


def _accept(rows: list[tuple], p: EpsfParams) -> list[str]:
    """Reasons after applying ``min_sep`` and ``max_stars`` in order to candidates without one."""
    reasons = [row[5] for row in rows]
    picked: list[tuple[float, float]] = []
    for i, (x, y, *_) in enumerate(rows):
        if reasons[i]:
            continue
        if len(picked) >= p.max_stars:
            reasons[i] = "max_stars"
        elif any(math.hypot(x - px, y - py) < p.min_sep for px, py in picked):
            reasons[i] = "too_close"
        else:
            picked.append((x, y))
    return reasons


def select_stars(
    ci: CellImage, seeds: pd.DataFrame | None, p: EpsfParams, fwhm_pix: float
) -> pd.DataFrame:
    """PSF-star candidates of one cell with their fate.

    Parameters
    ----------
    ci : CellImage
        Background-subtracted pixels around the cell.
    seeds : DataFrame or None
        GaiaXP seeds of this band: working-frame ``x``, ``y`` (pixels) and
        ``mag`` (AB); None or empty when none are used.
    p : EpsfParams
        ``epsf`` parameters.
    fwhm_pix : float
        Header seeing FWHM in pixels (NaN when unknown).

    Returns
    -------
    DataFrame
        One row per candidate in the cell: working-frame ``x``, ``y``, SEP
        ``flux`` (scaled counts), ``q`` (a/b), ``origin`` (sep/gaia) and
        ``reason`` ("" for accepted stars), Gaia seeds first.
    """
    fwhm = fwhm_pix if math.isfinite(fwhm_pix) and fwhm_pix > 0 else DEFAULT_FWHM_PIX
    det = _detect(ci, p)
    used = np.zeros(len(det), bool)
    rows = []
    if p.psfstar_mode != "sep" and seeds is not None and len(seeds):
        rows += _gaia_candidates(ci, det, used, seeds, p, fwhm)
    if p.psfstar_mode != "gaia":
        rows += _sep_candidates(ci, det.take(~used), p, fwhm)
    if not rows:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS)
    table = pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)
    return table.assign(x=table["x"] + ci.region.x0, y=table["y"] + ci.region.y0,
                        reason=_accept(rows, p))
