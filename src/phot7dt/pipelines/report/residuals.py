"""Model and residual stamps of a few fitted sources, rendered with :mod:`phot7dt.scene`.

The fitting stage keeps no model images, so the report re-renders the fitted
scene around each chosen source: every fitted catalog source whose centre lies
within the stamp (plus a margin) is drawn with its fitted position, shape and
flux through the PSF of its ePSF cell.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from phot7dt.catalog_columns import as_bool, numeric_column
from phot7dt.frames import Box, FrameSet
from phot7dt.psf_grid import PSFGrid
from phot7dt.scene import PixelizedPSF, catalog_to_soft

#: Sources up to this far outside a stamp (px) are rendered too (their wings reach in).
NEIGHBOUR_MARGIN_PIX = 15
_DEFAULT_SERSIC_N = 4.0


@dataclasses.dataclass(frozen=True)
class ResidualStamp:
    """Data, model and inverse variance of one stamp (common flux scale)."""

    source_id: str
    kind: str
    snr: float
    data: np.ndarray
    model: np.ndarray
    invvar: np.ndarray


def fitted_sources(catalog: pd.DataFrame, band: str) -> pd.DataFrame:
    """Rows with a fitted position and flux in ``band``, not excluded, plus their ``snr``."""
    x = numeric_column(catalog, "x_pix_white_fit")
    flux = numeric_column(catalog, f"FLUX_{band}_fit")
    err = numeric_column(catalog, f"FLUXERR_{band}_fit")
    excluded = as_bool(catalog["excluded_any"]) if "excluded_any" in catalog else False
    keep = np.isfinite(x) & np.isfinite(flux) & ~excluded
    rows = catalog.loc[keep].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rows["snr"] = (flux / err)[keep]
    return rows


def choose_sources(
    fitted: pd.DataFrame, n_stars: int, n_galaxies: int, min_snr: float
) -> pd.DataFrame:
    """``n`` stars and ``n`` galaxies spread evenly in S/N rank above ``min_snr``."""
    bright = fitted[fitted["snr"] >= min_snr]
    is_star = bright["stype_fit"].astype(str).str.lower() == "star"
    picks = []
    for rows, n in ((bright[is_star], n_stars), (bright[~is_star], n_galaxies)):
        if n and len(rows):
            ranked = rows.sort_values("snr", ascending=False)
            picks.append(ranked.iloc[np.unique(np.linspace(0, len(ranked) - 1, n).astype(int))])
    return pd.concat(picks) if picks else fitted.iloc[:0]


def _engine_params(rows: pd.DataFrame, origin: tuple[int, int]) -> tuple[list[str], np.ndarray]:
    kinds = rows["stype_fit"].astype(str).str.upper().tolist()
    params = np.zeros((len(rows), 6))
    params[:, 0] = numeric_column(rows, "x_pix_white_fit") - origin[0]
    params[:, 1] = numeric_column(rows, "y_pix_white_fit") - origin[1]
    galaxy = np.array([k != "STAR" for k in kinds])
    re, ell, theta = (numeric_column(rows, c) for c in ("Re_fit", "ELL_fit", "THETA_fit"))
    ok = galaxy & np.isfinite(re) & (re > 0)
    if ok.any():
        logre, ee1, ee2 = catalog_to_soft(re[ok], np.nan_to_num(ell[ok]), np.nan_to_num(theta[ok]))
        params[ok, 2], params[ok, 3], params[ok, 4] = logre, ee1, ee2
    sersic = numeric_column(rows, "sersic_n_fit")
    params[:, 5] = np.where(np.isfinite(sersic), sersic, _DEFAULT_SERSIC_N)
    return kinds, params


def residual_stamp(
    source: pd.Series, fitted: pd.DataFrame, frames: FrameSet, grid: PSFGrid, band: str, size: int
) -> ResidualStamp:
    """Render the fitted scene in a ``size`` x ``size`` box centred on ``source``."""
    from phot7dt.scene import render_model
    ny, nx = frames.shape
    half = size // 2
    xc, yc = round(float(source["x_pix_white_fit"])), round(float(source["y_pix_white_fit"]))
    x0, y0 = min(max(xc - half, 0), max(nx - size, 0)), min(max(yc - half, 0), max(ny - size, 0))
    box = Box(x0, y0, min(x0 + size, nx), min(y0 + size, ny))
    images, invvar, _ = frames.cutout(box, bands=[band])
    x, y = numeric_column(fitted, "x_pix_white_fit"), numeric_column(fitted, "y_pix_white_fit")
    m = NEIGHBOUR_MARGIN_PIX
    near = (x > box.x0 - m) & (x < box.x1 + m) & (y > box.y0 - m) & (y < box.y1 + m)
    scene = fitted.loc[near]
    kinds, params = _engine_params(scene, (box.x0, box.y0))
    sx, sy = float(source["x_pix_white_fit"]), float(source["y_pix_white_fit"])
    stamp = grid.choice(band, *grid.cell_of(sx, sy)).stamp_at(sx, sy)
    fluxes = numeric_column(scene, f"FLUX_{band}_fit").reshape(-1, 1)
    model = render_model(box.shape, [PixelizedPSF(stamp)], kinds, params, np.nan_to_num(fluxes))[0]
    return ResidualStamp(
        str(source["ID"]),
        str(source["stype_fit"]),
        float(source["snr"]),
        images[0].astype(float),
        model,
        invvar[0].astype(float),
    )
