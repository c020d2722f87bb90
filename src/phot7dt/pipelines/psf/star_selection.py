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

import math

import numpy as np
import pandas as pd
import sep

from phot7dt.pipelines.psf.cell_image import CellImage
from phot7dt.pipelines.psf.params import EpsfParams

__all__ = ["CANDIDATE_COLUMNS", "select_stars"]

CANDIDATE_COLUMNS = ["x", "y", "flux", "q", "origin", "reason"]
#: FWHM (pixels) assumed for aperture radii and core checks when the header has none.
DEFAULT_FWHM_PIX = 4.0


def _detect(ci: CellImage, p: EpsfParams) -> pd.DataFrame:
    """SEP detections in region pixel coordinates."""
    objects = sep.extract(
        ci.image, p.thresh_sigma, err=ci.sky_sigma, mask=ci.bad, minarea=p.minarea,
        deblend_nthresh=32, deblend_cont=0.001, clean=True, clean_param=1.0,
    )
    b = np.maximum(objects["b"], 1e-6)
    return pd.DataFrame({
        "x": objects["x"].astype(float),
        "y": objects["y"].astype(float),
        "flux": objects["flux"].astype(float),
        "q": (objects["a"] / b).astype(float),
        "blended": (objects["flag"] & (sep.OBJ_MERGED | sep.OBJ_TRUNC)) != 0,
    })


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
    yy, xx = np.ogrid[-core : core + 1, -core : core + 1]
    disk = xx**2 + yy**2 <= core**2
    patch = ci.bad[iy - core : iy + core + 1, ix - core : ix + core + 1]
    if patch.shape == disk.shape and (patch & disk).any():
        return "bad_pixels"
    return ""


def _forced_snr(ci: CellImage, x: float, y: float, p: EpsfParams, fwhm: float) -> float:
    radius = min(max(p.gaia_forced_k_fwhm * fwhm, p.gaia_forced_rmin_pix), p.gaia_forced_rmax_pix)
    radius = min(radius, p.half_size - 2)
    flux, err, flag = sep.sum_circle(ci.image, [x], [y], radius, err=ci.sky_sigma, mask=ci.bad)
    if flag[0] != 0 or not err[0] > 0:
        return float("nan")
    return float(flux[0] / err[0])


def _sep_candidates(ci: CellImage, det: pd.DataFrame, p: EpsfParams, fwhm: float) -> pd.DataFrame:
    """SEP detections in the cell, with their rejection reasons."""
    q_lo, q_hi = p.q_range
    rows = det[_in_cell(ci, det["x"].to_numpy(), det["y"].to_numpy())]
    reasons = []
    for r in rows.itertuples():
        if r.blended:
            reasons.append("blended")
        elif not q_lo <= r.q <= q_hi:
            reasons.append("roundness")
        else:
            reasons.append(_position_problem(ci, r.x, r.y, p, fwhm))
    out = rows.assign(origin="sep", reason=reasons)
    return out.sort_values("flux", ascending=False, kind="stable")


def _snap(det: pd.DataFrame, used: np.ndarray, x: float, y: float, radius: float) -> int | None:
    """Index of the nearest unused detection within ``radius`` of ``(x, y)``."""
    if det.empty:
        return None
    d = np.hypot(det["x"].to_numpy() - x, det["y"].to_numpy() - y)
    d[used] = np.inf
    i = int(np.argmin(d))
    return i if d[i] <= radius else None


def _seed_row(ci, det, used, x, y, p, fwhm) -> dict:
    """One GaiaXP seed (region coordinates): position after snapping and reason."""
    row = {"x": x, "y": y, "flux": float("nan"), "q": float("nan"), "origin": "gaia"}
    ix, iy = int(math.floor(x + 0.5)), int(math.floor(y + 0.5))
    if _box_any(ci.seed_saturated, ix, iy, p.gaia_seed_sat_r):
        return row | {"reason": "saturated"}
    if p.gaia_snap_to_sep:
        i = _snap(det, used, x, y, p.gaia_match_r_pix)
        if i is not None:
            used[i] = True
            d = det.iloc[i]
            row |= {"x": float(d["x"]), "y": float(d["y"]), "flux": float(d["flux"]),
                    "q": float(d["q"])}
            if d["blended"]:
                return row | {"reason": "blended"}
            if not p.q_range[0] <= d["q"] <= p.q_range[1]:
                return row | {"reason": "roundness"}
    problem = _position_problem(ci, row["x"], row["y"], p, fwhm)
    if problem:
        return row | {"reason": problem}
    snr = _forced_snr(ci, row["x"], row["y"], p, fwhm)
    return row | {"reason": "" if snr >= p.gaia_snr_min else "low_snr"}


def _gaia_candidates(ci, det, used, seeds: pd.DataFrame, p, fwhm) -> pd.DataFrame:
    """GaiaXP seeds (working-frame ``x``, ``y``, ``mag``) in the cell, in catalog order."""
    sx, sy = ci.to_region(seeds["x"].to_numpy(float), seeds["y"].to_numpy(float))
    mags = seeds["mag"].to_numpy(float)
    window = (mags >= p.gaia_mag_min) & (mags <= p.gaia_mag_max) & np.isfinite(sx) & np.isfinite(sy)
    keep = window & _in_cell(ci, np.nan_to_num(sx), np.nan_to_num(sy))
    rows = [_seed_row(ci, det, used, x, y, p, fwhm) for x, y in zip(sx[keep], sy[keep],
                                                                     strict=True)]
    return pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)


def _accept(candidates: pd.DataFrame, p: EpsfParams) -> pd.DataFrame:
    """Apply ``min_sep`` and ``max_stars`` in order to candidates without a reason."""
    reasons = candidates["reason"].to_list()
    picked: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(zip(candidates["x"], candidates["y"], strict=True)):
        if reasons[i]:
            continue
        if len(picked) >= p.max_stars:
            reasons[i] = "max_stars"
        elif any(math.hypot(x - px, y - py) < p.min_sep for px, py in picked):
            reasons[i] = "too_close"
        else:
            picked.append((x, y))
    return candidates.assign(reason=reasons)


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
    parts = []
    if p.psfstar_mode != "sep" and seeds is not None and len(seeds):
        parts.append(_gaia_candidates(ci, det, used, seeds, p, fwhm))
    if p.psfstar_mode != "gaia":
        parts.append(_sep_candidates(ci, det[~used], p, fwhm).drop(columns="blended"))
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS)
    table = _accept(pd.concat(parts, ignore_index=True)[CANDIDATE_COLUMNS], p)
    return table.assign(x=table["x"] + ci.region.x0, y=table["y"] + ci.region.y0)
