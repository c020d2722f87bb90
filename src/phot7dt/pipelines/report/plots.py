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
#: Residual montage: panel side and gap between panels, and margins (left: source
#: labels, right: colour bar and its label, bottom, top: column titles), inches.
_MONTAGE_PANEL_INCH = 1.9
_MONTAGE_GAP_INCH = 0.08
_MONTAGE_MARGINS_INCH = (0.75, 0.95, 0.1, 0.3)


def residual_montage_figure(stamps: list[ResidualStamp], band: str) -> Figure:
    """One row per source: data, fitted model (same asinh stretch), residual in sigma units.

    Panels at fixed places (a layout engine draws the figure twice) and one colour bar for
    the residual column, which shares one scale (``±_RESIDUAL_SIGMA``).
    """
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval
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
    left, right, bottom, top = _MONTAGE_MARGINS_INCH
    side, gap = _MONTAGE_PANEL_INCH, _MONTAGE_GAP_INCH
    n = len(stamps)
    fw = left + 3 * side + 2 * gap + right
    fh = bottom + n * side + (n - 1) * gap + top
    fig = Figure(figsize=(fw, fh))

    def place(row: int, col: int):
        y = bottom + (n - 1 - row) * (side + gap)
        return fig.add_axes(((left + col * (side + gap)) / fw, y / fh, side / fw, side / fh))

    image = None
    for r, stamp in enumerate(stamps):
        row = [place(r, c) for c in range(3)]
        norm = ImageNormalize(
            stamp.data, interval=ZScaleInterval(contrast=0.05), stretch=AsinhStretch(0.05)
        )
        sigma = np.where(stamp.invvar > 0, stamp.invvar, np.nan) ** -0.5
        chi = (stamp.data - stamp.model) / sigma
        row[0].imshow(stamp.data, origin="lower", cmap="gray", norm=norm, interpolation="nearest")
        row[1].imshow(stamp.model, origin="lower", cmap="gray", norm=norm, interpolation="nearest")
        image = row[2].imshow(chi, origin="lower", cmap="RdBu_r", vmin=-_RESIDUAL_SIGMA,
                              vmax=_RESIDUAL_SIGMA, interpolation="nearest")
        row[0].set_ylabel(f"{stamp.source_id}\n{stamp.kind}, S/N {stamp.snr:.0f}", fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        if r == 0:
            for ax, title in zip(row, ("data", "model", "residual"), strict=True):
                ax.set_title(f"{title} ({band})", fontsize=9)
    # one colour bar beside the residual column, at most three rows high, level with row 0
    height = min(n, 3) * side + (min(n, 3) - 1) * gap
    cax = fig.add_axes(((left + 3 * side + 2 * gap + 0.12) / fw,
                        (fh - top - height) / fh, 0.15 / fw, height / fh))
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
