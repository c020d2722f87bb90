"""Figures of the fitting stage: patch overview and per-source cutout montages (tract7dt's).

Built with ``matplotlib.figure.Figure`` (no pyplot state), saved by the catalog
(``patch_fit_plots``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from phot7dt.config.patch_run import PatchRunParams
from phot7dt.frames import Box
from phot7dt.pipelines.fitting.patch_views import PatchView

if TYPE_CHECKING:
    from astropy.visualization import ImageNormalize
    from matplotlib.figure import Figure

__all__ = ["patch_overview", "source_montage"]

PANEL_INCH = 3.0
PANEL_GAP_INCH = 0.3
#: Margins around the overview's panels, inches: left, right (colour bar), bottom (x label
#: and legend), top (panel titles and the figure title).
OVERVIEW_MARGINS_INCH = (0.65, 1.3, 0.8, 0.7)
CUTOUT_PANEL_INCH = 1.6


def _norm(image: np.ndarray, lo: float, hi: float) -> ImageNormalize:
    from astropy.visualization import AsinhStretch, ImageNormalize
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return ImageNormalize(vmin=0.0, vmax=1.0)
    vmin, vmax = np.percentile(finite, [lo, hi])
    return ImageNormalize(vmin=vmin, vmax=max(vmax, vmin + 1e-12), stretch=AsinhStretch(0.1))


def _resid_limits(image: np.ndarray, p_abs: float) -> tuple[float, float]:
    finite = np.abs(image[np.isfinite(image)])
    lim = float(np.percentile(finite, p_abs)) if finite.size else 1.0
    return -max(lim, 1e-12), max(lim, 1e-12)


def _overview_axes(shape: tuple[int, int]):
    """Figure with three equal image panels side by side and a colour bar, at fixed places.

    A fixed layout (no layout engine) draws the figure once instead of twice.
    """
    from matplotlib.figure import Figure
    ny, nx = shape
    width = PANEL_INCH
    height = min(max(PANEL_INCH * ny / max(nx, 1), 1.5), 2.5 * PANEL_INCH)
    left, right, bottom, top = OVERVIEW_MARGINS_INCH
    fw, fh = left + 3 * width + 2 * PANEL_GAP_INCH + right, bottom + height + top
    fig = Figure(figsize=(fw, fh))
    axes = [fig.add_axes(((left + i * (width + PANEL_GAP_INCH)) / fw, bottom / fh, width / fw,
                          height / fh)) for i in range(3)]
    for ax in axes[1:]:
        ax.sharex(axes[0])
        ax.sharey(axes[0])
        ax.tick_params(labelleft=False)
    # at most ~5 ticks per axis on a 3 in panel (shared by the three panels); ticks are
    # the bulk of the drawing
    axes[0].locator_params(nbins=5)
    cax = fig.add_axes(((left + 3 * width + 2 * PANEL_GAP_INCH + 0.15) / fw,
                        (bottom + 0.1 * height) / fh, 0.15 / fw, 0.8 * height / fh))
    return fig, axes, cax


def patch_overview(view: PatchView, tag: str, run: PatchRunParams) -> Figure:
    """White (inverse-variance weighted) data, model and residual of a patch region."""
    data, model = view.white(view.data), view.white(view.model)
    resid = data - model
    fig, axes, cax = _overview_axes(data.shape)
    norm = _norm(data, run.cutout_data_p_lo, run.cutout_data_p_hi)
    # patch pixels about as many as the panel's display pixels: nearest, not a smoothing filter
    axes[0].imshow(data, origin="lower", norm=norm, cmap="gray", interpolation="nearest")
    axes[1].imshow(model, origin="lower", norm=norm, cmap="gray", interpolation="nearest")
    vmin, vmax = _resid_limits(resid, run.cutout_resid_p_abs)
    image = axes[2].imshow(resid, origin="lower", vmin=vmin, vmax=vmax, cmap="RdBu_r",
                           interpolation="nearest")
    fig.colorbar(image, cax=cax, label="residual (scaled counts)")
    titles = ("data (white)", "model" if view.has_model else "model (not saved)",
              "residual")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title)
        ax.set_xlabel("x (px)")
        ax.plot(view.sources["x0"], view.sources["y0"], "x", color="orange", ms=5, label="catalog")
        ax.plot(view.sources["x"], view.sources["y"], "x", color="deepskyblue", ms=5, label="fit")
    axes[0].set_ylabel("y (px)")
    left = OVERVIEW_MARGINS_INCH[0] / fig.get_figwidth()
    axes[0].legend(loc="lower left", bbox_to_anchor=(left, 0.0), bbox_transform=fig.transFigure,
                   ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"patch {tag} (x0={view.box.x0}, y0={view.box.y0}); {len(view.sources)} sources",
                 y=1.0 - 0.08 / fig.get_figheight(), va="top")
    return fig


def _crop(view: PatchView, x: float, y: float, size: int) -> Box:
    ny, nx = view.box.shape
    half = size // 2
    xc, yc = int(round(x)), int(round(y))
    return Box(max(xc - half, 0), max(yc - half, 0), min(xc + half + 1, nx), min(yc + half + 1, ny))


def source_montage(view: PatchView, index: int, run: PatchRunParams) -> Figure:
    """Data / model / residual rows, one column per band, around one source."""
    from matplotlib.figure import Figure
    src = view.sources.iloc[index]
    box = _crop(view, src["x"], src["y"], run.cutout_size)
    rows = (("data", view.data), ("model", view.model), ("residual", view.residual))
    nb = len(view.bands)
    fig = Figure(
        figsize=(CUTOUT_PANEL_INCH * nb + 0.4, CUTOUT_PANEL_INCH * 3 + 0.6), layout="constrained"
    )
    axes = np.asarray(fig.subplots(3, nb, squeeze=False))
    extent = (box.x0 - 0.5, box.x1 - 0.5, box.y0 - 0.5, box.y1 - 0.5)
    for b, band in enumerate(view.bands):
        for r, (name, cube) in enumerate(rows):
            image = cube[b][box.slices]
            ax = axes[r, b]
            if name == "residual":
                vmin, vmax = _resid_limits(image, run.cutout_resid_p_abs)
                ax.imshow(image, origin="lower", extent=extent, vmin=vmin, vmax=vmax, cmap="RdBu_r")
            else:
                lo, hi = (
                    (run.cutout_data_p_lo, run.cutout_data_p_hi)
                    if name == "data"
                    else (run.cutout_model_p_lo, run.cutout_model_p_hi)
                )
                ax.imshow(
                    image, origin="lower", extent=extent, norm=_norm(image, lo, hi), cmap="gray"
                )
            ax.axvline(src["x0"], color="lime", ls="--", lw=0.7)
            ax.axhline(src["y0"], color="lime", ls="--", lw=0.7)
            ax.axvline(src["x"], color="magenta", lw=0.7)
            ax.axhline(src["y"], color="magenta", lw=0.7)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(band, fontsize=9)
            if b == 0:
                ax.set_ylabel(name)
    fig.suptitle(
        f"source {src['ID']}: catalog (lime, dashed) and fitted (magenta) position", fontsize=9
    )
    return fig
