"""Ingest figures: white stack before/after the crop, catalog overlay by TYPE.

Big frames are shown downsampled by tract7dt's ``*_downsample`` factors (block
means of the white stack; every n-th pixel for the whole-image view, which is
coadded on the fly from the raw bands), an
asinh stretch between the 0.5 and 99.5 percentiles, x/y in working-frame pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from phot7dt.config import section
from phot7dt.config.ingest import CropParams, PlottingParams
from phot7dt.frames import Box, FrameSet, read_region
from phot7dt.plotting import Figure, block_mean, panel_figure, percentile_norm

GALAXY_TYPES = frozenset({"GAL", "EXP", "DEV", "SERSIC"})
_WIDTH_IN = 9.0
#: Margins of the ingest figures, inches: left, right, bottom (axis label), top (title).
_MARGINS_IN = (0.8, 0.3, 0.6, 0.4)
#: Bottom margin under the catalog overlay: axis label and the legend below it.
_LEGEND_BOTTOM_IN = 1.35
#: Space between the overlay's full-frame and zoom panels, inches.
_PANEL_GAP_IN = 0.9


def _figure(
    shape: tuple[int, int], dpi: int, panels: int = 1, bottom: float = _MARGINS_IN[2]
) -> tuple[Figure, list[Any]]:
    """Figure ``_WIDTH_IN`` wide with ``panels`` image axes at fixed places (drawn once)."""
    left, right, _, top = _MARGINS_IN
    return panel_figure(shape, panels, width=_WIDTH_IN, margins=(left, right, bottom, top),
                        gap=_PANEL_GAP_IN, dpi=dpi)


def _show(ax: Any, image: np.ndarray, step: int, origin: tuple[int, int] = (0, 0)) -> None:
    """Image sampled every ``step`` pixels, drawn at its working-frame pixel extent."""
    x0, y0 = origin
    ny, nx = image.shape
    extent = (x0 - 0.5, x0 - 0.5 + nx * step, y0 - 0.5, y0 - 0.5 + ny * step)
    ax.imshow(
        image,
        origin="lower",
        cmap="gray",
        norm=percentile_norm(image, 0.5, 99.5, 0.05),
        extent=extent,
        interpolation="nearest",
    )
    ax.set_xlabel("x (working-frame pixels)")
    ax.set_ylabel("y (working-frame pixels)")



def placeholder(message: str, dpi: int) -> Figure:
    """A small figure that says why a plot was not drawn."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5, 1.2), dpi=dpi)
    fig.text(0.5, 0.5, message, ha="center", va="center")
    return fig


def sampled_white(frames: FrameSet, step: int) -> np.ndarray:
    """Whole-image (uncropped) white stack sampled every ``step`` pixels, float32."""
    weighted = None
    weights = None
    every = slice(None, None, step)
    for frame in frames.frames:
        pixels = np.asarray(read_region(frame.raw(), every, every), dtype=np.float32)
        good = np.isfinite(pixels)
        weight = np.float32(1.0 / frame.sky_sigma**2)
        if frame.weight_path is not None:  # per-pixel inverse variance, as the white stack
            weight = frame.invvar(read_region(frame.weight_map(), every, every))
            good &= weight > 0
        term = np.where(good, pixels * np.float32(frame.scale) * weight, 0)
        weighted = term if weighted is None else weighted + term
        weights = good * weight if weights is None else weights + good * weight
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(weights > 0, weighted / weights, np.nan).astype(np.float32)


def white_before_crop(frames: FrameSet, crop: CropParams, dpi: int) -> Figure:
    """Whole-image white stack with the working-frame crop box."""
    from matplotlib.patches import Rectangle
    if not crop.plot_pre_crop:
        return placeholder("pre-crop plot disabled (crop.plot_pre_crop: false)", dpi)
    step = crop.display_downsample
    fig, (ax,) = _figure(frames.full_shape, dpi)
    box = frames.crop
    _show(ax, sampled_white(frames, step), step, origin=(-box.x0, -box.y0))
    ax.add_patch(
        Rectangle((-0.5, -0.5), box.shape[1], box.shape[0], fill=False, color="red", lw=1.0)
    )
    ax.set_title(f"white stack before crop (step {step}); red: working frame, margin {box.x0} px")
    return fig


def white_after_crop(white: np.ndarray, crop: CropParams, dpi: int) -> Figure:
    """Working-frame white stack."""
    step = crop.post_crop_display_downsample
    fig, (ax,) = _figure(white.shape, dpi)
    _show(ax, block_mean(white, step), step)
    ax.set_title(f"white stack, working frame {white.shape[1]}x{white.shape[0]} px (step {step})")
    return fig


def zoom_box(box: tuple[int, int, int, int], shape: tuple[int, int]) -> Box:
    """The zoom region ``[x0, x1, y0, y1]`` when it lies inside a frame of ``shape``;
    otherwise the central quarter (in width and height) of the frame."""
    x0, x1, y0, y1 = box
    ny, nx = shape
    if 0 <= x0 < x1 <= nx and 0 <= y0 < y1 <= ny:
        return Box(x0, y0, x1, y1)
    width, height = max(nx // 4, 1), max(ny // 4, 1)
    x0, y0 = (nx - width) // 2, (ny - height) // 2
    return Box(x0, y0, x0 + width, y0 + height)


def _draw_sources(ax: Any, catalog: pd.DataFrame, size: float) -> None:
    placed = catalog[~catalog["excluded_crop"]]
    saturated = placed["excluded_saturation"].to_numpy(bool)
    kind = placed["TYPE"].astype("str").to_numpy()
    groups = (
        (
            "STAR",
            (kind == "STAR") & ~saturated,
            dict(marker="o", facecolors="none", edgecolors="cyan"),
        ),
        (
            "GAL/EXP/DEV/SERSIC",
            np.isin(kind, list(GALAXY_TYPES)) & ~saturated,
            dict(marker="o", facecolors="none", edgecolors="magenta"),
        ),
        (
            "UNKNOWN",
            ~np.isin(kind, ["STAR", *GALAXY_TYPES]) & ~saturated,
            dict(marker="s", facecolors="none", edgecolors="yellow"),
        ),
        ("excluded: saturation", saturated, dict(marker="x", color="red")),
    )
    for label, rows, style in groups:
        ax.scatter(
            placed["x_pix_white"][rows],
            placed["y_pix_white"][rows],
            s=size,
            lw=0.8,
            label=f"{label} (N={int(rows.sum())})",
            **style,
        )
    n_outside = int(catalog["excluded_crop"].sum())
    ax.scatter(
        [],
        [],
        marker="o",
        color="gray",
        s=size,
        label=f"excluded: crop / no position (N={n_outside})",
    )


def source_overlay(white: np.ndarray, catalog: pd.DataFrame, crop: CropParams, dpi: int) -> Figure:
    """White stack with catalog positions coloured by TYPE, plus an optional zoom panel."""
    from matplotlib.patches import Rectangle
    if not crop.overlay_catalog:
        return placeholder("overlay disabled (crop.overlay_catalog: false)", dpi)
    panels = 2 if crop.overlay_crop_enabled else 1
    fig, axes = _figure(white.shape, dpi, panels, bottom=_LEGEND_BOTTOM_IN)
    step = crop.overlay_downsample_full
    _show(axes[0], block_mean(white, step), step)
    _draw_sources(axes[0], catalog, size=12)
    axes[0].set_title(f"catalog sources by TYPE (step {step})")
    # below the x label of the full-frame panel, 0.45 in under the axes
    below = axes[0].get_position().y0 - 0.45 / fig.get_figheight()
    axes[0].legend(loc="upper left", bbox_to_anchor=(axes[0].get_position().x0, below),
                   bbox_transform=fig.transFigure, ncols=2, fontsize="x-small")
    if panels == 2:
        box = zoom_box(crop.overlay_crop_box, white.shape)
        zstep = crop.overlay_downsample_crop
        _show(axes[1], block_mean(white[box.slices], zstep), zstep, (box.x0, box.y0))
        inside = catalog["x_pix_white"].between(box.x0 - 0.5, box.x1 - 0.5) & catalog[
            "y_pix_white"
        ].between(box.y0 - 0.5, box.y1 - 0.5)
        _draw_sources(axes[1], catalog[inside], size=40)
        axes[1].set_xlim(box.x0 - 0.5, box.x1 - 0.5)
        axes[1].set_ylim(box.y0 - 0.5, box.y1 - 0.5)
        axes[1].set_title(f"zoom x {box.x0}:{box.x1}, y {box.y0}:{box.y1} (step {zstep})")
        axes[0].add_patch(
            Rectangle(
                (box.x0 - 0.5, box.y0 - 0.5),
                box.shape[1],
                box.shape[0],
                fill=False,
                color="orange",
                lw=1.0,
            )
        )
    return fig


def plot_white_stack(
    frames: FrameSet,
    white_stack: tuple[np.ndarray, Any],
    crop: dict[str, Any],
    plotting: dict[str, Any],
) -> tuple[Figure, Figure]:
    """Node: white stack before the crop (whole image, crop box drawn) and after it."""
    crop_params = section(CropParams, crop, "crop")
    dpi = section(PlottingParams, plotting, "plotting").dpi
    return white_before_crop(frames, crop_params, dpi), white_after_crop(
        white_stack[0], crop_params, dpi
    )


def plot_source_overlay(
    white_stack: tuple[np.ndarray, Any],
    flagged_catalog: pd.DataFrame,
    crop: dict[str, Any],
    plotting: dict[str, Any],
) -> Figure:
    """Node: working-frame white stack with the catalog overlaid by TYPE (+ zoom)."""
    crop_params = section(CropParams, crop, "crop")
    dpi = section(PlottingParams, plotting, "plotting").dpi
    return source_overlay(white_stack[0], flagged_catalog, crop_params, dpi)
