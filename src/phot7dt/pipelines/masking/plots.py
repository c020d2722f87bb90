"""Figure of the masking stage: the bright mask over the white stack."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from phot7dt.plotting import (
    Figure,
    block_any,
    display_step,
    overlay_figure,
    overlay_legend,
    show_white,
)


def plot_bright_mask(
    white_stack: tuple[np.ndarray, Any],
    bright_mask: tuple[np.ndarray, Any],
    detections: pd.DataFrame,
    active_catalog: pd.DataFrame,
) -> Figure:
    """White stack with the bright mask in red, listed/unlisted detections and affected sources."""
    white, mask = white_stack[0], bright_mask[0]
    step = display_step(white.shape)
    fig, ax = overlay_figure(white.shape)
    show_white(ax, white, step, mask=block_any(mask, step))
    if len(detections):
        listed = detections["listed"].astype(bool)
        ax.scatter(
            detections.loc[listed, "x"],
            detections.loc[listed, "y"],
            s=10,
            marker="+",
            c="lime",
            linewidths=0.6,
            label=f"detections in catalog ({int(listed.sum())})",
        )
        ax.scatter(
            detections.loc[~listed, "x"],
            detections.loc[~listed, "y"],
            s=20,
            marker="x",
            c="red",
            linewidths=0.8,
            label=f"detections masked ({int((~listed).sum())})",
        )
    hit = active_catalog[active_catalog["affected_by_bright_mask"].astype(bool)]
    if len(hit):
        ax.scatter(
            hit["x_pix_white"],
            hit["y_pix_white"],
            s=40,
            facecolors="none",
            edgecolors="yellow",
            linewidths=0.8,
            label=f"catalog sources on the mask ({len(hit)})",
        )
    fraction = 100.0 * np.count_nonzero(mask) / max(mask.size, 1)
    ax.set_title(f"Bright-source mask (red): {fraction:.2f}% of the frame")
    if ax.get_legend_handles_labels()[0]:
        overlay_legend(fig)
    return fig
