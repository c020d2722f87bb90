"""Report figures drawn here (the other stages draw their own): residual montage, patch overview."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from phot7dt.pipelines.report.residuals import ResidualStamp
from phot7dt.plotting import block_mean, display_step

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_RESIDUAL_SIGMA = 5.0


def residual_montage_figure(stamps: list[ResidualStamp], band: str) -> Figure:
    """One row per source: data, fitted model (same asinh stretch), residual in sigma units."""
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval
    from matplotlib.figure import Figure
    if not stamps:
        fig = Figure(figsize=(6, 1.5), layout="constrained")
        fig.text(
            0.5,
            0.5,
            f"no fitted source bright enough in {band} for a residual montage",
            ha="center",
            va="center",
        )
        return fig
    fig = Figure(figsize=(7.5, 2.3 * len(stamps)), layout="constrained")
    axes = fig.subplots(len(stamps), 3, squeeze=False)
    for row, stamp in zip(axes, stamps, strict=True):
        norm = ImageNormalize(
            stamp.data, interval=ZScaleInterval(contrast=0.05), stretch=AsinhStretch(0.05)
        )
        sigma = np.where(stamp.invvar > 0, stamp.invvar, np.nan) ** -0.5
        chi = (stamp.data - stamp.model) / sigma
        row[0].imshow(stamp.data, origin="lower", cmap="gray", norm=norm)
        row[1].imshow(stamp.model, origin="lower", cmap="gray", norm=norm)
        image = row[2].imshow(
            chi, origin="lower", cmap="RdBu_r", vmin=-_RESIDUAL_SIGMA, vmax=_RESIDUAL_SIGMA
        )
        row[0].set_ylabel(f"{stamp.source_id}\n{stamp.kind}, S/N {stamp.snr:.0f}", fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(image, ax=row[2], fraction=0.046, label="(data − model) / σ")
    for ax, title in zip(axes[0], ("data", "model", "residual"), strict=True):
        ax.set_title(f"{title} ({band})", fontsize=9)
    return fig



def patch_overview_figure(white: np.ndarray, patches: pd.DataFrame, max_pix: int) -> Figure:
    """White stack (downsampled, z-scale) with each patch's base box (solid) and fitted
    region with its halo (dashed), working-frame pixels."""
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    step = display_step(white.shape, max_pix)
    small = block_mean(white, step)
    fig = Figure(
        figsize=(8, 8 * small.shape[0] / max(small.shape[1], 1) + 0.6), layout="constrained"
    )
    ax = fig.add_subplot()
    norm = ImageNormalize(small, interval=ZScaleInterval(), stretch=AsinhStretch(0.1))
    extent = (-0.5, small.shape[1] * step - 0.5, -0.5, small.shape[0] * step - 0.5)
    ax.imshow(small, origin="lower", cmap="gray", norm=norm, extent=extent)
    for row in patches.itertuples():
        ax.add_patch(
            Rectangle(
                (row.x0_base - 0.5, row.y0_base - 0.5),
                row.x1_base - row.x0_base,
                row.y1_base - row.y0_base,
                fill=False,
                color="tab:cyan",
                lw=0.8,
            )
        )
        ax.add_patch(
            Rectangle(
                (row.x0_roi - 0.5, row.y0_roi - 0.5),
                row.x1_roi - row.x0_roi,
                row.y1_roi - row.y0_roi,
                fill=False,
                color="tab:orange",
                lw=0.5,
                ls="--",
            )
        )
    ax.set(
        xlabel="x (working-frame px)",
        ylabel="y (working-frame px)",
        title=f"{len(patches)} patches: base boxes (cyan), fitted regions with halo (orange)",
    )
    return fig
