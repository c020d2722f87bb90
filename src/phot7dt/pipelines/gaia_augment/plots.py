"""Figures of the Gaia augmentation stage, and the white-stack display they share with masking."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Longest side, in display pixels, of a white stack drawn under an overlay: about the
#: axes' width in pixels at the catalog's 150 dpi, so no drawn pixel is thrown away.
DISPLAY_MAX_SIDE = 1200
#: Overlay figure: width and margins (left, right, bottom: axis label and legend, top), inches.
OVERLAY_WIDTH_INCH = 9.0
OVERLAY_MARGINS_INCH = (0.8, 0.25, 1.25, 0.4)


def display_step(shape: tuple[int, int], max_side: int = DISPLAY_MAX_SIDE) -> int:
    """Integer subsampling step that brings ``shape`` under ``max_side`` pixels."""
    return max(1, math.ceil(max(shape) / max_side))


def overlay_figure(shape: tuple[int, int]):
    """Figure and axes for a white-stack overlay of a frame of ``shape``, at fixed places
    (drawn once; a layout engine draws twice), room for a legend below the axes."""
    from matplotlib.figure import Figure
    left, right, bottom, top = OVERLAY_MARGINS_INCH
    width = OVERLAY_WIDTH_INCH - left - right
    height = width * shape[0] / max(shape[1], 1)
    fw, fh = OVERLAY_WIDTH_INCH, height + bottom + top
    fig = Figure(figsize=(fw, fh))
    return fig, fig.add_axes((left / fw, bottom / fh, width / fw, height / fh))


def overlay_legend(fig) -> None:
    """The figure's legend, centred below the axes."""
    fig.legend(loc="lower center", bbox_to_anchor=(0.5, 0.02), ncols=3, fontsize=8)


def show_white(ax, white: np.ndarray, step: int) -> None:
    """Draw the white stack subsampled by ``step``, zscale-stretched, in full-frame pixel units."""
    from astropy.visualization import ImageNormalize, ZScaleInterval
    small = np.asarray(white[::step, ::step], dtype=np.float32)
    finite = small[np.isfinite(small)]
    norm = ImageNormalize(finite if finite.size else np.zeros(1), interval=ZScaleInterval())
    ny, nx = white.shape
    extent = (-0.5, small.shape[1] * step - 0.5, -0.5, small.shape[0] * step - 0.5)
    ax.imshow(small, origin="lower", cmap="gray", norm=norm, extent=extent, interpolation="nearest")
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    ax.set_xlabel("x (working-frame pixels)")
    ax.set_ylabel("y (working-frame pixels)")


def _scatter(ax, rows: pd.DataFrame, label: str, **style: Any) -> None:
    if len(rows):
        ax.scatter(rows["x_pix_white"], rows["y_pix_white"], label=f"{label} ({len(rows)})", **style)


def plot_augmentation_overlay(
    white_stack: tuple[np.ndarray, Any], augmented_catalog: pd.DataFrame, summary: dict[str, Any]
) -> Figure:
    """White stack with input sources, Gaia-matched rows, injected stars and the selection box."""
    from matplotlib.patches import Rectangle
    white = white_stack[0]
    fig, ax = overlay_figure(white.shape)
    show_white(ax, white, display_step(white.shape))
    cat = augmented_catalog
    injected = cat["is_injected_gaia"].astype(bool)
    excluded = cat["excluded_any"].astype(bool)
    matched = cat["gaia_source_id"].astype(str) != ""
    ring = {"facecolors": "none", "linewidths": 0.8}
    _scatter(ax, cat[~injected & ~excluded], "input, active", s=14, edgecolors="cyan", **ring)
    _scatter(ax, cat[~injected & excluded], "input, excluded", s=30, marker="x", c="orange", linewidths=0.8)
    _scatter(ax, cat[~injected & matched], "input, Gaia-matched", s=40, marker="s", edgecolors="lime", **ring)
    _scatter(ax, cat[injected & ~excluded], "Gaia injected", s=40, edgecolors="magenta", **ring)
    _scatter(ax, cat[injected & excluded], "Gaia injected, excluded", s=50, marker="x", c="red", linewidths=1)
    if summary.get("enabled"):
        x0, x1, y0, y1 = summary["box_x0_x1_y0_y1"]
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="yellow",
                               linestyle="--", linewidth=1.2, label="Gaia selection box"))
        ax.set_title("Gaia augmentation on the white stack")
    else:
        ax.set_title("Gaia augmentation switched off (zp.enabled: false)")
    overlay_legend(fig)
    return fig
