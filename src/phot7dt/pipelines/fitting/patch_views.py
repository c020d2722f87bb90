"""Data, model and residual of a patch region, rebuilt from the merged catalog (for the plots).

The model holds every fitted source whose fitted position lies in the region,
each with the result of its own patch, rendered through the PSF of the
region's ePSF cell. In single-band mode the first band's position and shape
are drawn with each band's flux (tract7dt's visualisation rule).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from phot7dt.frames import Box, FrameSet
from phot7dt.psf_grid import PSFGrid
from phot7dt.scene import PixelizedPSF, catalog_to_soft

__all__ = ["PatchView", "patch_view"]


@dataclasses.dataclass(frozen=True)
class PatchView:
    """Per-band arrays of one region, shape (B, ny, nx), and the sources drawn in it.

    ``sources`` has ``ID``, ``x``, ``y`` (fitted, region px) and ``x0``, ``y0``
    (catalog positions, region px).
    """

    bands: tuple[str, ...]
    box: Box
    data: np.ndarray
    model: np.ndarray
    invvar: np.ndarray
    sources: pd.DataFrame

    @property
    def residual(self) -> np.ndarray:
        """data - model, (B, ny, nx)."""
        return self.data - self.model

    def white(self, cube: np.ndarray) -> np.ndarray:
        """Inverse-variance weighted mean over bands, (ny, nx); NaN where no band is good."""
        weight = self.invvar.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(weight > 0, (cube * self.invvar).sum(axis=0) / weight, np.nan)


def _column(merged: pd.DataFrame, name: str, band: str) -> pd.Series:
    if name in merged.columns:
        return merged[name]
    return merged[name.replace("_fit", f"_{band}_fit")]


def _sources_in(merged: pd.DataFrame, box: Box, band0: str) -> pd.DataFrame:
    x = _column(merged, "x_pix_white_fit", band0).to_numpy(float) - box.x0
    y = _column(merged, "y_pix_white_fit", band0).to_numpy(float) - box.y0
    ny, nx = box.shape
    inside = (
        np.isfinite(x) & np.isfinite(y) & (x > -0.5) & (x < nx - 0.5) & (y > -0.5) & (y < ny - 0.5)
    )
    rows = merged[inside]
    return rows.assign(_x=x[inside], _y=y[inside])


def _params(rows: pd.DataFrame, band0: str) -> tuple[list[str], np.ndarray]:
    kinds = rows["stype_fit"].str.upper().tolist()
    re = _column(rows, "Re_fit", band0).to_numpy(float)
    ell = _column(rows, "ELL_fit", band0).to_numpy(float)
    theta = _column(rows, "THETA_fit", band0).to_numpy(float)
    galaxy = np.isfinite(re)
    logre, ee1, ee2 = catalog_to_soft(
        np.where(galaxy, re, 1.0), np.where(galaxy, ell, 0.0), np.where(galaxy, theta, 0.0)
    )
    n = _column(rows, "sersic_n_fit", band0).fillna(1.0).to_numpy(float)
    return kinds, np.stack([rows["_x"], rows["_y"], logre, ee1, ee2, n], axis=1)


def patch_view(
    box: Box,
    cell: tuple[int, int],
    merged: pd.DataFrame,
    frames: FrameSet,
    bright_mask: np.ndarray | None,
    grid: PSFGrid,
) -> PatchView:
    """Cut ``box`` from the frames and render the merged catalog's model of it."""
    from phot7dt.scene import render_model
    bands = tuple(frames.bands)
    mask = None if bright_mask is None else np.asarray(bright_mask[box.slices] > 0)
    data, invvar, _ = frames.cutout(box, extra_mask=mask)
    rows = _sources_in(merged, box, bands[0])
    xc, yc = (box.x0 + box.x1 - 1) / 2.0, (box.y0 + box.y1 - 1) / 2.0
    psfs = [PixelizedPSF(grid.choice(b, *cell).stamp_at(xc, yc)) for b in bands]
    kinds, params = _params(rows, bands[0])
    fluxes = np.nan_to_num(np.column_stack([rows[f"FLUX_{b}_fit"].to_numpy(float) for b in bands]))
    model = (
        render_model(box.shape, psfs, kinds, params, fluxes) if len(rows) else np.zeros(data.shape)
    )
    sources = pd.DataFrame(
        {
            "ID": rows["ID"].astype(str) if "ID" in rows else rows.index.astype(str),
            "x": rows["_x"],
            "y": rows["_y"],
            "x0": rows["x_pix_white"] - box.x0,
            "y0": rows["y_pix_white"] - box.y0,
        }
    )
    return PatchView(
        bands, box, data.astype(float), model, invvar.astype(float), sources.reset_index(drop=True)
    )
