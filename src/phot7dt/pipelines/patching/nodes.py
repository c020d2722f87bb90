"""Nodes of the patching stage: the patch grid and the per-patch payloads."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from phot7dt.catalog_columns import merge_key
from phot7dt.config import section
from phot7dt.config.epsf import EpsfParams
from phot7dt.config.patch_run import PatchRunParams
from phot7dt.config.patches import PatchesParams, PatchInputsParams
from phot7dt.frames import FrameSet
from phot7dt.pipelines.patching.geometry import (
    PATCH_COLUMNS,
    grow,
    halo_pix,
    nearest_pixel,
    patch_tag,
    split_cell,
)
from phot7dt.pipelines.patching.source_init import initial_columns
from phot7dt.psf_grid import cell_boxes, cell_tag, occupied_cells

__all__ = ["build_patch_payloads", "define_patches"]

logger = logging.getLogger(__name__)

_REQUIRED = ("x_pix_white", "y_pix_white", "excluded_any")


def _check_columns(catalog: pd.DataFrame) -> None:
    for col in (*_REQUIRED, *merge_key(catalog)):
        if col not in catalog.columns:
            raise ValueError(
                f"active_catalog: missing column {col!r} (expected from ingest/masking)"
            )


def _active(catalog: pd.DataFrame) -> pd.DataFrame:
    """Rows that are fitted: not excluded, with a finite white-frame position."""
    keep = ~catalog["excluded_any"].astype(bool).to_numpy()
    keep &= np.isfinite(catalog["x_pix_white"].to_numpy(float))
    keep &= np.isfinite(catalog["y_pix_white"].to_numpy(float))
    return catalog[keep]



def _occupied(active: pd.DataFrame, shape: tuple[int, int], ngrid: int) -> set[tuple[int, int]]:
    return occupied_cells(active["x_pix_white"], active["y_pix_white"], shape, ngrid)


def define_patches(
    active_catalog: pd.DataFrame, frames: FrameSet, epsf: dict, patches: dict
) -> pd.DataFrame:
    """Split every active ePSF cell into ``epsf.ngrid x epsf.ngrid`` patches with a halo.

    Parameters
    ----------
    active_catalog : DataFrame
        Catalog with ``x_pix_white``, ``y_pix_white`` (working-frame px) and ``excluded_any``.
    frames : FrameSet
        Gives the working-frame shape.
    epsf, patches : dict
        ``epsf`` (``epsf_ngrid``, ``ngrid``, ``skip_empty_epsf_patches``,
        ``final_psf_size``) and ``patches`` (``halo_pix_min``) sections.

    Returns
    -------
    DataFrame
        One row per patch, columns :data:`PATCH_COLUMNS`; boxes are half-open,
        working-frame px; ``*_roi`` is the base box plus the halo, clipped to the frame.
    """
    grid = section(EpsfParams, epsf, "epsf")
    geometry = section(PatchesParams, patches, "patches")
    _check_columns(active_catalog)
    cells = cell_boxes(frames.shape, grid.epsf_ngrid)
    active = (
        _occupied(_active(active_catalog), frames.shape, grid.epsf_ngrid)
        if grid.skip_empty_epsf_patches
        else set(cells)
    )
    halo = halo_pix(grid.final_psf_size, geometry.halo_pix_min)
    rows = []
    for er, ec in sorted(active):
        for (pr, pc), base in split_cell(cells[(er, ec)], grid.ngrid).items():
            roi = grow(base, halo, frames.shape)
            rows.append(
                (
                    er,
                    ec,
                    pr,
                    pc,
                    cell_tag(er, ec),
                    patch_tag(er, ec, pr, pc),
                    base.x0,
                    base.x1,
                    base.y0,
                    base.y1,
                    roi.x0,
                    roi.x1,
                    roi.y0,
                    roi.y1,
                    halo,
                )
            )
    table = pd.DataFrame(rows, columns=list(PATCH_COLUMNS))
    logger.info(
        "patches: %d ePSF cell(s) of %d active, %d patches of %dx%d per cell, halo %d px",
        len(active),
        len(cells),
        len(table),
        grid.ngrid,
        grid.ngrid,
        halo,
    )
    return table


def _roi_members(px: np.ndarray, py: np.ndarray, patches: pd.DataFrame) -> list[np.ndarray]:
    """Row positions (ascending) of the sources whose nearest pixel lies in each patch ROI.

    Sources are sorted once by x; each ROI takes its column strip by binary search and
    keeps the rows inside its y range, so the cost is the strip size, not the catalog.
    """
    order = np.argsort(px, kind="stable")
    sorted_px = px[order]
    lo = np.searchsorted(sorted_px, patches["x0_roi"].to_numpy(), side="left")
    hi = np.searchsorted(sorted_px, patches["x1_roi"].to_numpy(), side="left")
    y0, y1 = patches["y0_roi"].to_numpy(), patches["y1_roi"].to_numpy()
    members = []
    for i in range(len(patches)):
        strip = order[lo[i] : hi[i]]
        members.append(np.sort(strip[(py[strip] >= y0[i]) & (py[strip] < y1[i])]))
    return members


def _payload_table(
    table: pd.DataFrame, patches: pd.DataFrame, members: list[np.ndarray]
) -> pd.DataFrame:
    """One row per (patch, ROI member) in patch order: tag, halo flag, patch-local position."""
    rows = np.concatenate(members) if members else np.zeros(0, dtype=np.intp)
    which = np.repeat(np.arange(len(patches)), [len(m) for m in members])
    px, py = table["_px"].to_numpy()[rows], table["_py"].to_numpy()[rows]

    def per_row(column: str) -> np.ndarray:
        return patches[column].to_numpy()[which]

    in_base = (px >= per_row("x0_base")) & (px < per_row("x1_base"))
    in_base &= (py >= per_row("y0_base")) & (py < per_row("y1_base"))
    out = table.drop(columns=["_px", "_py"]).iloc[rows].reset_index(drop=True)
    out.insert(0, "patch_tag", per_row("patch_tag"))
    out.insert(1, "is_halo", ~in_base)
    out["x_pix_patch"] = out["x_pix_white"].to_numpy() - per_row("x0_roi")
    out["y_pix_patch"] = out["y_pix_white"].to_numpy() - per_row("y0_roi")
    return out


def build_patch_payloads(
    patches: pd.DataFrame,
    active_catalog: pd.DataFrame,
    frames: FrameSet,
    patch_run: dict,
    patch_inputs: dict,
) -> pd.DataFrame:
    """Sources of every patch with patch-local positions and initial values.

    A source is a *base* source of the patch whose base box holds its nearest
    pixel, and a *halo* source of every other patch whose region of interest
    holds it (modelled there, reported only by its base patch). Pixels are not
    copied: ``fit_patches`` cuts each region from the memory-mapped frames.

    Parameters
    ----------
    patches : DataFrame
        Output of :func:`define_patches`.
    active_catalog : DataFrame
        Catalog with positions, exclusion flags and the tract7dt input columns.
    frames : FrameSet
        Gives the band names.
    patch_run, patch_inputs : dict
        ``patch_run`` (``gal_model``, ``re_fallback_pix``, ``sersic_n_init``)
        and ``patch_inputs`` (``skip_empty_patch``) sections.

    Returns
    -------
    DataFrame
        One row per (patch, source): ``patch_tag``, ``is_halo``, the merge key
        (``ID`` or ``RA``/``DEC``), ``x_pix_white``, ``y_pix_white``,
        ``x_pix_patch``, ``y_pix_patch`` (px, ROI origin), and the columns of
        :func:`~phot7dt.pipelines.patching.source_init.initial_columns`.
    """
    run = section(PatchRunParams, patch_run, "patch_run")
    inputs = section(PatchInputsParams, patch_inputs, "patch_inputs")
    _check_columns(active_catalog)
    key = merge_key(active_catalog)
    active = _active(active_catalog)
    init = initial_columns(
        active,
        frames.bands,
        gal_model=run.gal_model,
        re_fallback_pix=run.re_fallback_pix,
        sersic_n_init=run.sersic_n_init,
    )
    table = pd.concat([active[[*key, "x_pix_white", "y_pix_white"]], init], axis=1)
    table["_px"], table["_py"] = (
        nearest_pixel(table["x_pix_white"]),
        nearest_pixel(table["y_pix_white"]),
    )
    members = _roi_members(table["_px"].to_numpy(), table["_py"].to_numpy(), patches)
    payloads = _payload_table(table, patches, members)
    with_base = payloads.loc[~payloads["is_halo"], "patch_tag"].unique()
    n_empty = len(patches) - len(with_base)
    if inputs.skip_empty_patch:
        keep = payloads["patch_tag"].isin(with_base).to_numpy()
        payloads = payloads[keep].reset_index(drop=True)
    n_base = int((~payloads["is_halo"]).sum())
    if n_base < len(active):
        logger.warning(
            "patch payloads: %d active source(s) lie in no patch (outside the frame)",
            len(active) - n_base,
        )
    logger.info(
        "patch payloads: %d patches with sources (%d without, %s), %d base and %d halo rows",
        payloads["patch_tag"].nunique(),
        n_empty,
        "skipped" if inputs.skip_empty_patch else "kept",
        n_base,
        len(payloads) - n_base,
    )
    return payloads
