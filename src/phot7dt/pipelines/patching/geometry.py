"""Patch grid: ``ngrid x ngrid`` base boxes per ePSF cell, each with a halo.

All boxes are half-open ``[x0, x1) x [y0, y1)`` in working-frame pixels. A
position belongs to the box holding its nearest pixel (``floor(v + 0.5)``), the
same rule :func:`phot7dt.psf_grid.cell_index` uses for ePSF cells, so a source
is in exactly one base box and that box lies in the source's ePSF cell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from phot7dt.frames import Box
from phot7dt.psf_grid import cell_tag, grid_edges

__all__ = [
    "PATCH_COLUMNS",
    "base_box",
    "grow",
    "halo_pix",
    "nearest_pixel",
    "patch_tag",
    "split_cell",
]

#: Columns of the patches table (tract7dt's ``patches.csv``).
PATCH_COLUMNS = (
    "epsf_r",
    "epsf_c",
    "patch_r",
    "patch_c",
    "epsf_tag",
    "patch_tag",
    "x0_base",
    "x1_base",
    "y0_base",
    "y1_base",
    "x0_roi",
    "x1_roi",
    "y0_roi",
    "y1_roi",
    "halo_pix",
)


def patch_tag(epsf_r: int, epsf_c: int, patch_r: int, patch_c: int) -> str:
    """tract7dt's patch tag ``rRR_cCC_prPP_pcQQ``."""
    return f"{cell_tag(epsf_r, epsf_c)}_pr{patch_r:02d}_pc{patch_c:02d}"


def halo_pix(final_psf_size: int, halo_pix_min: int) -> int:
    """Halo width, pixels: ``max((final_psf_size - 1) // 2 + 2, halo_pix_min)``."""
    return max((int(final_psf_size) - 1) // 2 + 2, int(halo_pix_min))


def split_cell(cell: Box, ngrid: int) -> dict[tuple[int, int], Box]:
    """Base boxes of one cell: ``{(patch_r, patch_c): Box}``, the last row/column taking the rest.

    Raises
    ------
    ValueError
        If the cell is narrower than ``ngrid`` pixels on either axis.
    """
    ny, nx = cell.shape
    if ny < ngrid or nx < ngrid:
        raise ValueError(
            f"epsf.ngrid={ngrid}: cannot split a {ny}x{nx} px ePSF cell into "
            f"{ngrid}x{ngrid} patches (expected ngrid <= {min(ny, nx)})"
        )
    ye, xe = grid_edges(cell.y0, cell.y1, ngrid), grid_edges(cell.x0, cell.x1, ngrid)
    return {
        (r, c): Box(xe[c], ye[r], xe[c + 1], ye[r + 1]) for r in range(ngrid) for c in range(ngrid)
    }


def nearest_pixel(values: pd.Series | np.ndarray) -> np.ndarray:
    """Index of the nearest pixel of each position (-1 where not finite)."""
    v = np.asarray(values, dtype=float)
    out = np.full(v.shape, -1, dtype=np.int64)
    ok = np.isfinite(v)
    out[ok] = np.floor(v[ok] + 0.5).astype(np.int64)
    return out


def grow(box: Box, halo: int, shape: tuple[int, int]) -> Box:
    """``box`` grown by ``halo`` px on every side, clipped to a frame of ``shape = (ny, nx)``."""
    ny, nx = shape
    return Box(
        max(box.x0 - halo, 0), max(box.y0 - halo, 0), min(box.x1 + halo, nx), min(box.y1 + halo, ny)
    )


def base_box(row: pd.Series) -> Box:
    """Base box of a patches-table row."""
    return Box(int(row["x0_base"]), int(row["y0_base"]), int(row["x1_base"]), int(row["y1_base"]))
