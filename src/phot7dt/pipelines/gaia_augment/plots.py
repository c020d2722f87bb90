"""Figures of the Gaia augmentation stage, and the white-stack display they share with masking."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from phot7dt.plotting import Figure, display_step, overlay_figure, overlay_legend, show_white


def _scatter(ax, rows: pd.DataFrame, label: str, **style: Any) -> None:
    if len(rows):
        ax.scatter(
            rows["x_pix_white"], rows["y_pix_white"], label=f"{label} ({len(rows)})", **style
        )


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
    _scatter(
        ax,
        cat[~injected & excluded],
        "input, excluded",
        s=30,
        marker="x",
        c="orange",
        linewidths=0.8,
    )
    _scatter(
        ax,
        cat[~injected & matched],
        "input, Gaia-matched",
        s=40,
        marker="s",
        edgecolors="lime",
        **ring,
    )
    _scatter(ax, cat[injected & ~excluded], "Gaia injected", s=40, edgecolors="magenta", **ring)
    _scatter(
        ax,
        cat[injected & excluded],
        "Gaia injected, excluded",
        s=50,
        marker="x",
        c="red",
        linewidths=1,
    )
    if summary.get("enabled"):
        x0, x1, y0, y1 = summary["box_x0_x1_y0_y1"]
        ax.add_patch(
            Rectangle(
                (x0 - 0.5, y0 - 0.5),
                x1 - x0,
                y1 - y0,
                fill=False,
                edgecolor="yellow",
                linestyle="--",
                linewidth=1.2,
                label="Gaia selection box",
            )
        )
        ax.set_title("Gaia augmentation on the white stack")
    else:
        ax.set_title("Gaia augmentation switched off (zp.enabled: false)")
    overlay_legend(fig)
    return fig
