"""Report figures drawn here (the other stages draw their own): residual montage, patch overview."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from phot7dt.pipelines.report.residuals import ResidualStamp
from phot7dt.plotting import block_mean, display_step, panel_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_RESIDUAL_SIGMA = 5.0
#: Residual montage: column width and gap between columns, and margins (left: source
#: labels, right: colour bar and its label, bottom, top: column titles), inches; blank
#: image rows between two sources' stamps.
_MONTAGE_PANEL_INCH = 1.9
_MONTAGE_GAP_INCH = 0.08
_MONTAGE_MARGINS_INCH = (0.5, 0.95, 0.1, 0.3)
_MONTAGE_SEPARATOR_PIX = 2


def _column(panels: list[np.ndarray], side: int) -> np.ndarray:
    """``panels`` stacked top to bottom in ``side`` x ``side`` slots (each centred in its
    slot), :data:`_MONTAGE_SEPARATOR_PIX` NaN rows between slots, for ``origin="lower"``."""
    n, sep = len(panels), _MONTAGE_SEPARATOR_PIX
    column = np.full((n * (side + sep) - sep, side), np.nan)
    for r, panel in enumerate(panels):
        h, w = panel.shape
        y0 = (n - 1 - r) * (side + sep) + (side - h) // 2
        x0 = (side - w) // 2
        column[y0 : y0 + h, x0 : x0 + w] = panel
    return column


def residual_montage_figure(stamps: list[ResidualStamp], band: str) -> Figure:
    """One row per source: data, fitted model (same asinh stretch), residual in sigma units.

    Each column is one image of its stamps (data and model already stretched to 0..1 by
    each source's own stretch; the residual on the one ``±_RESIDUAL_SIGMA`` scale, with
    one colour bar), the source of each row named at its left: three axes at fixed places
    instead of three per source, and no layout engine (which draws a figure twice).
    """
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    if not stamps:
        fig = Figure(figsize=(6, 1.5))
        fig.text(
            0.5,
            0.5,
            f"no fitted source bright enough in {band} for a residual montage",
            ha="center",
            va="center",
        )
        return fig
    data, model, chi = [], [], []
    for stamp in stamps:
        norm = ImageNormalize(
            stamp.data, interval=ZScaleInterval(contrast=0.05), stretch=AsinhStretch(0.05)
        )
        data.append(np.ma.filled(norm(stamp.data), np.nan))
        model.append(np.ma.filled(norm(stamp.model), np.nan))
        sigma = np.where(stamp.invvar > 0, stamp.invvar, np.nan) ** -0.5
        chi.append((stamp.data - stamp.model) / sigma)
    side = max(max(stamp.data.shape) for stamp in stamps)
    n, sep = len(stamps), _MONTAGE_SEPARATOR_PIX
    left, right, bottom, top = _MONTAGE_MARGINS_INCH
    width, gap = _MONTAGE_PANEL_INCH, _MONTAGE_GAP_INCH
    height = width * (n * (side + sep) - sep) / side
    fw, fh = left + 3 * width + 2 * gap + right, bottom + height + top
    fig = Figure(figsize=(fw, fh))
    axes = [fig.add_axes(((left + c * (width + gap)) / fw, bottom / fh, width / fw, height / fh))
            for c in range(3)]
    grey = colormaps["gray"].with_extremes(bad="white")
    axes[0].imshow(_column(data, side), origin="lower", cmap=grey, vmin=0.0, vmax=1.0,
                   interpolation="nearest")
    axes[1].imshow(_column(model, side), origin="lower", cmap=grey, vmin=0.0, vmax=1.0,
                   interpolation="nearest")
    image = axes[2].imshow(_column(chi, side), origin="lower",
                           cmap=colormaps["RdBu_r"].with_extremes(bad="white"),
                           vmin=-_RESIDUAL_SIGMA, vmax=_RESIDUAL_SIGMA, interpolation="nearest")
    for ax, title in zip(axes, ("data", "model", "residual"), strict=True):
        ax.set_title(f"{title} ({band})", fontsize=9)
        ax.set_axis_off()
        ax.set_xticks([])  # an axis off still lays out its ticks to place the title
        ax.set_yticks([])
    for r, stamp in enumerate(stamps):
        middle = (n - 1 - r) * (side + sep) + (side - 1) / 2
        axes[0].text(-0.04 * side, middle, f"{stamp.source_id}\n{stamp.kind}, S/N {stamp.snr:.0f}",
                     rotation=90, ha="right", va="center", fontsize=8, multialignment="center")
    # one colour bar beside the residual column, at most three rows high, level with row 0
    rows = min(n, 3)
    bar = height * (rows * (side + sep) - sep) / (n * (side + sep) - sep)
    cax = fig.add_axes(((left + 3 * width + 2 * gap + 0.12) / fw,
                        (fh - top - bar) / fh, 0.15 / fw, bar / fh))
    fig.colorbar(image, cax=cax, label="(data − model) / σ")
    return fig


def patch_overview_figure(white: np.ndarray, patches: pd.DataFrame, max_pix: int) -> Figure:
    """White stack (downsampled, z-scale) with each patch's base box (solid) and fitted
    region with its halo (dashed), working-frame pixels."""
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle
    step = display_step(white.shape, max_pix)
    small = block_mean(white, step)
    fig, (ax,) = panel_figure(small.shape, width=8.0, margins=(0.8, 0.25, 0.6, 0.4))
    norm = ImageNormalize(small, interval=ZScaleInterval(), stretch=AsinhStretch(0.1))
    extent = (-0.5, small.shape[1] * step - 0.5, -0.5, small.shape[0] * step - 0.5)
    ax.imshow(small, origin="lower", cmap="gray", norm=norm, extent=extent,
              interpolation="nearest")
    # two collections (base boxes, fitted regions) rather than two patches per patch
    for x0, x1, y0, y1, style in (
        ("x0_base", "x1_base", "y0_base", "y1_base", dict(edgecolor="tab:cyan", lw=0.8)),
        ("x0_roi", "x1_roi", "y0_roi", "y1_roi", dict(edgecolor="tab:orange", lw=0.5, ls="--")),
    ):
        boxes = [
            Rectangle((a - 0.5, c - 0.5), b - a, d - c)
            for a, b, c, d in zip(patches[x0], patches[x1], patches[y0], patches[y1], strict=True)
        ]
        ax.add_collection(PatchCollection(boxes, facecolor="none", **style), autolim=False)
    ax.set(
        xlabel="x (working-frame px)",
        ylabel="y (working-frame px)",
        title=f"{len(patches)} patches: base boxes (cyan), fitted regions with halo (orange)",
    )
    return fig
