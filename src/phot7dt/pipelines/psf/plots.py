"""QA figures of the psf stage, one figure per band and kind.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state) and
saved by the catalog (``epsf_plots``).
"""

from __future__ import annotations

import numpy as np
from astropy.visualization import AsinhStretch, ImageNormalize, LogStretch, ZScaleInterval
from matplotlib.figure import Figure

from phot7dt.pipelines.psf.cell_task import CellResult
from phot7dt.pipelines.psf.params import EpsfParams
from phot7dt.psf_grid import PSFGrid, cell_tag

__all__ = [
    "growth_curve_sheet",
    "residual_sheet",
    "stamp_sheet",
    "star_cutout_sheet",
    "star_selection_sheet",
]

PANEL_INCH = 2.2


def _panel_grid(ngrid: int, title: str) -> tuple[Figure, np.ndarray]:
    """Figure with ``ngrid x ngrid`` panels, row 0 (low y) at the bottom."""
    fig = Figure(figsize=(PANEL_INCH * ngrid + 0.6, PANEL_INCH * ngrid + 0.8), layout="constrained")
    axes = np.asarray(fig.subplots(ngrid, ngrid, squeeze=False))[::-1]
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    return fig, axes


def _log_norm(stamp: np.ndarray) -> ImageNormalize:
    peak = float(np.nanmax(stamp)) if np.isfinite(stamp).any() else 1.0
    return ImageNormalize(vmin=peak * 1e-4, vmax=peak, stretch=LogStretch(1000), clip=True)


def stamp_sheet(grid: PSFGrid, band: str, cells: list[CellResult], p: EpsfParams) -> Figure:
    """The PSF of every cell (log stretch), with model, stars used and FWHM."""
    fig, axes = _panel_grid(grid.ngrid, f"{band}: PSF per cell (log stretch, 1e-4 to 1 of peak)")
    for (b, r, c), choice in grid.items():
        if b != band:
            continue
        ax = axes[r, c]
        ax.imshow(choice.stamp, origin="lower", cmap="magma", norm=_log_norm(choice.stamp))
        colour = "black" if choice.model == "epsf" else "tab:red"
        stars = (f"N={choice.nstars}" if choice.model == "epsf"
                 else f"{choice.fallback_level} N={choice.fallback_nstars}")
        ax.set_title(f"{cell_tag(r, c)} {choice.model}\n{stars} FWHM={choice.fwhm_pix:.2f}px",
                     fontsize=8, color=colour)
    return fig


def star_selection_sheet(grid: PSFGrid, band: str, cells: list[CellResult],
                         p: EpsfParams) -> Figure:
    """Background-subtracted cells with accepted (green) and rejected (red) candidates."""
    fig, axes = _panel_grid(grid.ngrid, f"{band}: PSF-star candidates (green used, red rejected)")
    for res in cells:
        ax = axes[res.row, res.col]
        if res.thumbnail is None:
            continue
        s = res.thumbnail_step
        extent = (res.box.x0 - 0.5, res.box.x0 + res.thumbnail.shape[1] * s - 0.5,
                  res.box.y0 - 0.5, res.box.y0 + res.thumbnail.shape[0] * s - 0.5)
        norm = ImageNormalize(res.thumbnail, interval=ZScaleInterval(), stretch=AsinhStretch())
        im = ax.imshow(res.thumbnail, origin="lower", cmap="gray", norm=norm, extent=extent)
        cand = res.candidates
        if len(cand):
            ok = cand["reason"] == ""
            ax.scatter(cand.loc[ok, "x"], cand.loc[ok, "y"], s=30, facecolors="none",
                       edgecolors="lime", linewidths=0.8)
            ax.scatter(cand.loc[~ok, "x"], cand.loc[~ok, "y"], s=12, marker="x", c="red",
                       linewidths=0.6)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_title(f"{cell_tag(res.row, res.col)}: {res.nstars_used} used", fontsize=8)
        if p.diagnostics_show_colorbar:
            fig.colorbar(im, ax=ax, shrink=0.7)
    return fig


def growth_curve_sheet(grid: PSFGrid, band: str, cells: list[CellResult],
                       p: EpsfParams) -> Figure:
    """Encircled energy of every built ePSF, and the FWHM map of the chosen PSFs."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax, ax_map = fig.subplots(1, 2, width_ratios=[1.4, 1])
    for res in cells:
        if res.metrics is None:
            continue
        ax.plot(res.metrics.radii, res.metrics.ee, lw=1, label=cell_tag(res.row, res.col))
    for level in (0.5, 0.8, 0.9):
        ax.axhline(level, color="0.7", lw=0.6, ls="--")
    ax.set_xlabel("radius [pix]")
    ax.set_ylabel("encircled energy (fraction of stamp)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{band}: ePSF growth curves")
    if sum(r.metrics is not None for r in cells) <= 16:
        ax.legend(fontsize=7, ncol=2)
    fwhm = np.full((grid.ngrid, grid.ngrid), np.nan)
    for (b, r, c), choice in grid.items():
        if b == band:
            fwhm[r, c] = choice.fwhm_pix
    im = ax_map.imshow(fwhm, origin="lower", cmap="viridis")
    for (r, c), v in np.ndenumerate(fwhm):
        model = grid.choice(band, r, c).model
        ax_map.text(c, r, f"{v:.2f}\n{model}", ha="center", va="center", fontsize=7, color="w")
    ax_map.set_xticks(range(grid.ngrid))
    ax_map.set_yticks(range(grid.ngrid))
    ax_map.set_xlabel("cell column")
    ax_map.set_ylabel("cell row")
    ax_map.set_title("PSF FWHM used [pix]")
    fig.colorbar(im, ax=ax_map, shrink=0.8)
    return fig


def residual_sheet(grid: PSFGrid, band: str, cells: list[CellResult], p: EpsfParams) -> Figure:
    """Median of (star / flux - ePSF) over used stars, in percent of the ePSF peak."""
    fig, axes = _panel_grid(grid.ngrid, f"{band}: median residual of used stars [% of ePSF peak]")
    for res in cells:
        if res.build is None:
            continue
        ax = axes[res.row, res.col]
        resid = 100.0 * res.build.residual / res.build.stamp.max()
        lim = max(float(np.nanpercentile(np.abs(resid), 99.5)), 1e-3)
        im = ax.imshow(resid, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"{cell_tag(res.row, res.col)}: {res.nstars_used} stars", fontsize=8)
        if p.diagnostics_show_colorbar:
            fig.colorbar(im, ax=ax, shrink=0.7)
    return fig


def star_cutout_sheet(grid: PSFGrid, band: str, cells: list[CellResult],
                      p: EpsfParams) -> Figure:
    """Background-subtracted cutouts of used stars (log stretch, each to its own peak)."""
    cutouts = [(res, cut) for res in cells if res.build for cut in res.build.cutouts]
    cutouts = cutouts[: p.save_star_montage_max]
    ncol = max(1, min(10, len(cutouts)))
    nrow = max(1, -(-len(cutouts) // ncol))
    fig = Figure(figsize=(1.5 * ncol, 1.6 * nrow + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, (res, cut) in zip(axes, cutouts, strict=False):
        ax.imshow(cut, origin="lower", cmap="magma", norm=_log_norm(cut))
        ax.set_title(cell_tag(res.row, res.col), fontsize=7)
    fig.suptitle(f"{band}: used PSF stars after local background subtraction")
    return fig
