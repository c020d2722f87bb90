"""QA figures of the psf stage, one figure per band and kind.

Each per-cell sheet is one mosaic image of the cells' stamps (see
:mod:`~phot7dt.pipelines.psf.mosaic`) with one shared stretch and one colour
bar, the cells at their grid position (row 0, low y, at the bottom, tick
labels ``rRR`` / ``cCC`` giving the cell tag) and a short text per cell.
Figures are built with ``matplotlib.figure.Figure`` (no pyplot state, fixed
layout) and saved by the catalog (``epsf_plots``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from phot7dt.config.epsf import EpsfParams
from phot7dt.pipelines.psf.mosaic import Mosaic, build_mosaic, label_cells
from phot7dt.psf_grid import PSFGrid, cell_tag

if TYPE_CHECKING:
    from astropy.visualization import ImageNormalize
    from matplotlib.figure import Figure

    from phot7dt.pipelines.psf.cell_task import CellResult

__all__ = [
    "growth_curve_sheet",
    "residual_sheet",
    "stamp_sheet",
    "star_cutout_sheet",
    "star_selection_sheet",
]

#: Figure width per mosaic column, inches.
TILE_INCH = 1.05
#: Log stretch of PSF stamps: 1e-4 to 1 of each stamp's peak.
LOG_FLOOR = 1e-4
#: Colour of the separators between tiles, per colour map.
SEPARATOR_COLOURS = {"magma": "0.55", "gray": "tab:blue", "RdBu_r": "0.35"}
#: Margins around a mosaic, inches: left, right (colour bar and its label), bottom, top.
MARGINS_INCH = (0.7, 1.35, 0.6, 0.45)


def _mosaic_figure(mosaic: Mosaic, title: str, tile_inch: float = TILE_INCH):
    """Figure sized to the mosaic's aspect: image axes and colour-bar axes at fixed places.

    A fixed layout (no layout engine) renders the figure once instead of twice.
    """
    from matplotlib.figure import Figure
    ny, nx = mosaic.image.shape
    width = tile_inch * mosaic.ncol
    height = width * ny / nx
    left, right, bottom, top = MARGINS_INCH
    fw, fh = width + left + right, height + bottom + top
    fig = Figure(figsize=(fw, fh))
    ax = fig.add_axes((left / fw, bottom / fh, width / fw, height / fh))
    cax = fig.add_axes(((left + width + 0.15) / fw, (bottom + 0.1 * height) / fh, 0.18 / fw,
                        0.8 * height / fh))
    ax.set_title(title)
    return fig, ax, cax


def _show(fig: Figure, axes, mosaic: Mosaic, norm, cmap: str, label: str, colorbar: bool = True):
    """The mosaic as one image and its colour bar (``axes``: image and colour-bar axes)."""
    ax, cax = axes
    im = ax.imshow(np.ma.masked_invalid(mosaic.image), origin="lower", norm=norm,
                   cmap=_with_bad(cmap), interpolation="nearest")
    if not colorbar:
        cax.set_visible(False)
        return None
    return fig.colorbar(im, cax=cax, label=label)


def _with_bad(cmap: str):
    """``cmap`` with separators and empty slots in a colour that stands out of it."""
    from matplotlib import colormaps
    return colormaps[cmap].with_extremes(bad=SEPARATOR_COLOURS.get(cmap, "0.5"))


def _log_norm() -> ImageNormalize:
    """Log stretch of tiles scaled by :func:`_to_peak` (NaN separators stay NaN)."""
    from astropy.visualization import ImageNormalize, LogStretch
    return ImageNormalize(vmin=LOG_FLOOR, vmax=1.0, stretch=LogStretch(1000), clip=False)


def _log_ticks(colorbar) -> None:
    """Decade ticks on a colour bar of :func:`_log_norm`."""
    decades = 10.0 ** np.arange(np.log10(LOG_FLOOR), 0.5)
    colorbar.set_ticks(decades, labels=[f"{v:g}" for v in decades])


def _to_peak(stamp: np.ndarray) -> np.ndarray:
    """``stamp`` over its peak, clipped to ``[LOG_FLOOR, 1]`` (all NaN without a positive peak)."""
    peak = float(np.nanmax(stamp)) if np.isfinite(stamp).any() else 0.0
    if not peak > 0:
        return np.full(stamp.shape, np.nan)
    return np.clip(stamp / peak, LOG_FLOOR, 1.0)


def stamp_sheet(grid: PSFGrid, band: str, cells: list[CellResult], p: EpsfParams) -> Figure:
    """The PSF of every cell (each to its own peak, log stretch), model, stars used and FWHM."""
    tiles, labels = {}, {}
    for r in range(grid.ngrid):
        for c in range(grid.ngrid):
            choice = grid.choice(band, r, c)
            if choice.stamp is not None:
                tiles[(r, c)] = _to_peak(np.asarray(choice.stamp, float))
            text = f"{choice.fwhm_pix:.2f} px N={choice.nstars}"
            labels[(r, c)] = (text, "white") if choice.model == "epsf" else (
                f"{choice.fwhm_pix:.2f} px {choice.model}\n{choice.fallback_level} "
                f"N={choice.fallback_nstars}", "#ff6060")
    mosaic = build_mosaic(tiles, grid.ngrid, grid.ngrid)
    fig, ax, cax = _mosaic_figure(
        mosaic, f"{band}: PSF per cell, FWHM and stars used (red: fallback model)")
    _log_ticks(_show(fig, (ax, cax), mosaic, _log_norm(), "magma",
                     "fraction of the cell's PSF peak (log)"))
    label_cells(ax, mosaic, labels)
    return fig


def _thumbnail_positions(res: CellResult, mosaic: Mosaic, x, y):
    """Working-frame positions to mosaic pixels of ``res``'s thumbnail slot (inside it only)."""
    s, (h, w) = res.thumbnail_step, res.thumbnail.shape
    u = (np.asarray(x, float) - res.box.x0 - (s - 1) / 2) / s
    v = (np.asarray(y, float) - res.box.y0 - (s - 1) / 2) / s
    inside = (u >= -0.5) & (u < w - 0.5) & (v >= -0.5) & (v < h - 0.5)
    x0, y0 = mosaic.origin(res.row, res.col)
    dy, dx = (mosaic.tile_shape[0] - h) // 2, (mosaic.tile_shape[1] - w) // 2
    return u[inside] + x0 + dx, v[inside] + y0 + dy


def star_selection_sheet(grid: PSFGrid, band: str, cells: list[CellResult],
                         p: EpsfParams) -> Figure:
    """Background-subtracted cells with accepted (green) and rejected (red) candidates."""
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval
    shown = [res for res in cells if res.thumbnail is not None]
    mosaic = build_mosaic({(res.row, res.col): res.thumbnail for res in shown},
                          grid.ngrid, grid.ngrid)
    step = max((res.thumbnail_step for res in shown), default=1)
    fig, ax, cax = _mosaic_figure(
        mosaic, f"{band}: PSF-star candidates (green used, red rejected)", tile_inch=1.35)
    finite = mosaic.image[np.isfinite(mosaic.image)]
    norm = ImageNormalize(finite if finite.size else np.zeros(1), interval=ZScaleInterval(),
                          stretch=AsinhStretch())
    _show(fig, (ax, cax), mosaic, norm, "gray",
          f"background-subtracted flux, {step}x{step} px block mean (zscale, asinh)",
          p.diagnostics_show_colorbar)
    used, rejected = ([], []), ([], [])
    for res in shown:
        cand = res.candidates
        if not len(cand):
            continue
        ok = (cand["reason"] == "").to_numpy()
        for target, rows in ((used, ok), (rejected, ~ok)):
            u, v = _thumbnail_positions(res, mosaic, cand["x"].to_numpy()[rows],
                                        cand["y"].to_numpy()[rows])
            target[0].append(u), target[1].append(v)
    if used[0]:
        ax.scatter(np.concatenate(used[0]), np.concatenate(used[1]), s=30, facecolors="none",
                   edgecolors="lime", linewidths=0.8)
        ax.scatter(np.concatenate(rejected[0]), np.concatenate(rejected[1]), s=12, marker="x",
                   c="red", linewidths=0.6)
    ny, nx = mosaic.image.shape
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    label_cells(ax, mosaic, {(res.row, res.col): (f"{res.nstars_used} used", "black")
                             for res in shown}, boxed=True)
    return fig


def growth_curve_sheet(grid: PSFGrid, band: str, cells: list[CellResult],
                       p: EpsfParams) -> Figure:
    """Encircled energy of every built ePSF coloured by its FWHM, and the FWHM map."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    # fixed places (inches / figure size): curves, FWHM map and its colour bar
    fig = Figure(figsize=(11, 4.5))
    ax = fig.add_axes((0.06, 0.11, 0.5, 0.81))
    ax_map = fig.add_axes((0.63, 0.11, 0.26, 0.81))
    cax = fig.add_axes((0.9, 0.19, 0.013, 0.65))
    fwhm = np.full((grid.ngrid, grid.ngrid), np.nan)
    models = np.full((grid.ngrid, grid.ngrid), "", dtype=object)
    for r in range(grid.ngrid):
        for c in range(grid.ngrid):
            choice = grid.choice(band, r, c)
            fwhm[r, c], models[r, c] = choice.fwhm_pix, choice.model
    finite = fwhm[np.isfinite(fwhm)]
    norm = Normalize(*(finite.min(), finite.max()) if finite.size else (0.0, 1.0))
    measured = [res.metrics for res in cells if res.metrics is not None]
    curves = LineCollection([np.column_stack([m.radii, m.ee]) for m in measured], lw=0.8,
                            cmap="viridis", norm=norm)
    curves.set_array(np.array([m.fwhm_pix for m in measured]))
    ax.add_collection(curves)
    for level in (0.5, 0.8, 0.9):
        ax.axhline(level, color="0.7", lw=0.6, ls="--")
    ax.set_xlim(0, max((max(m.radii) for m in measured if len(m.radii)), default=1.0))
    ax.set_xlabel("radius [pix]")
    ax.set_ylabel("encircled energy (fraction of stamp)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{band}: ePSF growth curves of {len(measured)} cells (colour: ePSF FWHM)")
    im = ax_map.imshow(fwhm, origin="lower", cmap="viridis", norm=norm, interpolation="nearest")
    for (r, c), v in np.ndenumerate(fwhm):
        ax_map.text(c, r, f"{v:.2f}\n{models[r, c]}", ha="center", va="center", fontsize=7,
                    color="w")
    ax_map.set_xticks(range(grid.ngrid))
    ax_map.set_yticks(range(grid.ngrid))
    ax_map.set_xlabel("cell column")
    ax_map.set_ylabel("cell row")
    ax_map.set_title("PSF FWHM used [pix]")
    fig.colorbar(im, cax=cax, label="FWHM [pix]").locator.set_params(nbins=5)
    return fig


def residual_sheet(grid: PSFGrid, band: str, cells: list[CellResult], p: EpsfParams) -> Figure:
    """Median of (star / flux - ePSF) over used stars, in percent of each ePSF's peak."""
    from matplotlib.colors import Normalize
    built = [res for res in cells if res.build is not None]
    tiles = {(res.row, res.col): 100.0 * res.build.residual / res.build.stamp.max()
             for res in built}
    mosaic = build_mosaic(tiles, grid.ngrid, grid.ngrid)
    finite = np.abs(mosaic.image[np.isfinite(mosaic.image)])
    lim = max(float(np.percentile(finite, 99.5)) if finite.size else 0.0, 1e-3)
    fig, ax, cax = _mosaic_figure(mosaic, f"{band}: median residual of the N used stars")
    _show(fig, (ax, cax), mosaic, Normalize(-lim, lim), "RdBu_r",
          "residual [% of the cell's ePSF peak]", p.diagnostics_show_colorbar)
    label_cells(ax, mosaic, {(res.row, res.col): (f"N={res.nstars_used}", "black")
                             for res in built}, boxed=True)
    return fig


def star_cutout_sheet(grid: PSFGrid, band: str, cells: list[CellResult],
                      p: EpsfParams) -> Figure:
    """Background-subtracted cutouts of used stars (log stretch, each to its own peak)."""
    cutouts = [(res, cut) for res in cells if res.build for cut in res.build.cutouts]
    cutouts = cutouts[: p.save_star_montage_max]
    ncol = max(1, min(10, len(cutouts)))
    nrow = max(1, -(-len(cutouts) // ncol))
    slots = [(nrow - 1 - i // ncol, i % ncol) for i in range(len(cutouts))]
    mosaic = build_mosaic({slot: _to_peak(np.asarray(cut, float))
                           for slot, (_, cut) in zip(slots, cutouts, strict=True)}, nrow, ncol)
    fig, ax, cax = _mosaic_figure(
        mosaic, f"{band}: used PSF stars after local background subtraction", tile_inch=0.9)
    _log_ticks(_show(fig, (ax, cax), mosaic, _log_norm(), "magma",
                     "fraction of the star's peak (log)"))
    label_cells(ax, mosaic, {slot: (cell_tag(res.row, res.col), "black")
                             for slot, (res, _) in zip(slots, cutouts, strict=True)})
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    return fig
