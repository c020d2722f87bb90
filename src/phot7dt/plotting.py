"""Display helpers shared by every stage's figures: subsampling, block reductions, overlays.

Figures themselves live beside the stage that makes them (``pipelines/<stage>/plots.py``);
this module holds only what several of them draw with.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure
else:
    # Node modules annotate with this name; Kedro resolves node annotations at run time
    # (typing.get_type_hints), and matplotlib is imported only by the nodes that draw.
    Figure = object

__all__ = [
    "DISPLAY_MAX_SIDE",
    "Figure",
    "block_any",
    "block_mean",
    "display_step",
    "overlay_figure",
    "overlay_legend",
    "panel_figure",
    "percentile_norm",
    "show_white",
]

#: Longest side, in display pixels, of a white stack drawn under an overlay: about the
#: axes' width in pixels at the catalog's 150 dpi, so no drawn pixel is thrown away.
DISPLAY_MAX_SIDE = 1200
#: Overlay figure: width and margins (left, right, bottom: axis label and legend, top), inches.
OVERLAY_WIDTH_INCH = 9.0
OVERLAY_MARGINS_INCH = (0.8, 0.25, 1.25, 0.4)


def display_step(shape: tuple[int, int], max_side: int = DISPLAY_MAX_SIDE) -> int:
    """Integer subsampling step that brings ``shape`` under ``max_side`` pixels."""
    return max(1, math.ceil(max(shape) / max_side))


def panel_figure(
    shape: tuple[int, int],
    panels: int = 1,
    *,
    width: float = OVERLAY_WIDTH_INCH,
    margins: tuple[float, float, float, float] = OVERLAY_MARGINS_INCH,
    gap: float = 0.0,
    max_height: float = 11.0,
    dpi: float | None = None,
):
    """Figure ``width`` inches wide with ``panels`` image axes of a frame of ``shape`` side by
    side, ``gap`` inches apart, at fixed places (``margins``: left, right, bottom, top,
    inches). A fixed layout draws the figure once; a layout engine draws it twice."""
    from matplotlib.figure import Figure

    left, right, bottom, top = margins
    pw = (width - left - right - gap * (panels - 1)) / panels
    ph = min(max(pw * shape[0] / max(shape[1], 1), 1.0), max_height)
    fw, fh = width, ph + bottom + top
    fig = Figure(figsize=(fw, fh), dpi=dpi)
    axes = [
        fig.add_axes(((left + i * (pw + gap)) / fw, bottom / fh, pw / fw, ph / fh))
        for i in range(panels)
    ]
    return fig, axes


def overlay_figure(shape: tuple[int, int]):
    """Figure and axes for a white-stack overlay of a frame of ``shape``, at fixed places
    (drawn once; a layout engine draws twice), room for a legend below the axes."""
    fig, (ax,) = panel_figure(shape)
    return fig, ax


def overlay_legend(fig) -> None:
    """The figure's legend, centred below the axes."""
    fig.legend(loc="lower center", bbox_to_anchor=(0.5, 0.02), ncols=3, fontsize=8)


def show_white(
    ax,
    white: np.ndarray,
    step: int,
    mask: np.ndarray | None = None,
    mask_color: str = "red",
    mask_alpha: float = 0.45,
) -> None:
    """Draw the white stack subsampled by ``step``, zscale-stretched, in full-frame pixel units.

    ``mask`` (same shape as the subsampled stack, e.g. :func:`block_any` of a full-frame
    mask) is painted over it in ``mask_color`` at ``mask_alpha``, in the same image: a
    512-colour table, the 256 grey levels then the same levels blended with the mask colour,
    which looks the same as a second, translucent image and costs one image, not two.
    """
    from astropy.visualization import ImageNormalize, ZScaleInterval

    small = np.asarray(white[::step, ::step], dtype=np.float32)
    finite = np.isfinite(small)
    norm = ImageNormalize(small[finite] if finite.any() else np.zeros(1),
                          interval=ZScaleInterval())
    ny, nx = white.shape
    extent = (-0.5, small.shape[1] * step - 0.5, -0.5, small.shape[0] * step - 0.5)
    if mask is None:
        ax.imshow(small, origin="lower", cmap="gray", norm=norm, extent=extent,
                  interpolation="nearest")
    else:
        from matplotlib.colors import ListedColormap, to_rgb

        scaled = np.ma.filled(norm(small), 0.0)
        level = np.rint(np.clip(np.where(finite, scaled, 0.0), 0.0, 1.0) * 255)
        index = level.astype(np.int16) + 256 * (np.asarray(mask) > 0)
        grey = np.repeat(np.linspace(0.0, 1.0, 256)[:, None], 3, axis=1)
        tinted = (1 - mask_alpha) * grey + mask_alpha * np.asarray(to_rgb(mask_color))
        cmap = ListedColormap(np.vstack([grey, tinted])).with_extremes(bad=(0, 0, 0, 0))
        # value k at the centre of colour k: the colour table is read exactly
        ax.imshow(np.ma.masked_array(index, ~finite), origin="lower", cmap=cmap, vmin=-0.5,
                  vmax=511.5, extent=extent, interpolation="nearest")
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    ax.set_xlabel("x (working-frame pixels)")
    ax.set_ylabel("y (working-frame pixels)")


def block_mean(image: np.ndarray, step: int) -> np.ndarray:
    """Mean of ``step x step`` pixel blocks (NaN-aware), streamed in row bands, float32.

    Trailing rows/columns that do not fill a block are dropped.
    """
    ny, nx = (image.shape[0] // step) * step, (image.shape[1] // step) * step
    out = np.full((ny // step, nx // step), np.nan, np.float32)
    rows = step * 256
    for y0 in range(0, ny, rows):
        band = np.asarray(image[y0 : min(y0 + rows, ny), :nx], dtype=np.float32)
        blocks = band.reshape(band.shape[0] // step, step, nx // step, step)
        good = np.isfinite(blocks)
        count = good.sum(axis=(1, 3))
        total = np.where(good, blocks, 0).sum(axis=(1, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[y0 // step : y0 // step + count.shape[0]] = total / count
    return out


def block_any(mask: np.ndarray, step: int) -> np.ndarray:
    """``mask`` reduced by ``step`` with a logical OR per block, so thin regions stay visible."""
    ny, nx = mask.shape
    py, px = -ny % step, -nx % step
    padded = np.pad(np.asarray(mask) > 0, ((0, py), (0, px)))
    return padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step).any(
        axis=(1, 3)
    )


def percentile_norm(image: np.ndarray, lower: float, upper: float, asinh_a: float):
    """Asinh-stretched :class:`~astropy.visualization.ImageNormalize` between the ``lower`` and
    ``upper`` percentiles (astropy's ``AsymmetricPercentileInterval``) of the finite pixels;
    an empty or flat image gets the unit range."""
    from astropy.visualization import AsinhStretch, AsymmetricPercentileInterval, ImageNormalize

    finite = np.asarray(image)[np.isfinite(image)]
    vmin, vmax = (
        AsymmetricPercentileInterval(lower, upper).get_limits(finite) if finite.size else (0.0, 1.0)
    )
    if not vmax > vmin:
        vmax = vmin + 1.0
    return ImageNormalize(vmin=vmin, vmax=vmax, stretch=AsinhStretch(asinh_a))
