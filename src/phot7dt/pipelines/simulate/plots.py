"""Figures of the simulate pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd

from phot7dt.frames import RawImage
from phot7dt.plotting import Figure, block_mean

#: The displayed image is block-averaged down to at most this many pixels a side.
MAX_DISPLAY_PIX = 1000
TYPE_STYLES = {
    "STAR": ("o", "tab:cyan"),
    "EXP": ("s", "tab:orange"),
    "DEV": ("D", "tab:red"),
    "SERSIC": ("^", "tab:green"),
}



def quicklook_figure(pixels: np.ndarray, band: str, truth: pd.DataFrame) -> Figure:
    """One band of the simulated tile (asinh stretch) with the true sources marked by model.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``(ny, nx)`` image, ADU.
    band : str
        Band name for the title.
    truth : pandas.DataFrame
        ``truth.csv`` rows (``x_pix``, ``y_pix``, ``TYPE``, ``in_catalog``).
    """
    import matplotlib
    from astropy.stats import mad_std
    from astropy.visualization import AsinhStretch, ImageNormalize, ManualInterval
    from matplotlib.figure import Figure
    step = max(1, int(np.ceil(max(pixels.shape) / MAX_DISPLAY_PIX)))
    shown = block_mean(pixels, step)
    finite = shown[np.isfinite(shown)]
    median = float(np.median(finite))
    noise = float(mad_std(finite))
    # From 2 sigma below the sky to the brightest 0.1 %: faint galaxies and star cores both show.
    low, high = median - 2.0 * noise, max(float(np.percentile(finite, 99.9)), median + 10 * noise)
    norm = ImageNormalize(interval=ManualInterval(low, high), stretch=AsinhStretch(0.02))
    cmap = matplotlib.colormaps["gray"].with_extremes(bad="tab:red")
    fig = Figure(figsize=(9, 8), dpi=110)
    ax = fig.add_subplot()
    extent = (-0.5, shown.shape[1] * step - 0.5, -0.5, shown.shape[0] * step - 0.5)
    img = ax.imshow(
        shown, origin="lower", cmap=cmap, norm=norm, extent=extent, interpolation="nearest"
    )
    size = 90 if len(truth) <= 100 else 25
    for model, (marker, colour) in TYPE_STYLES.items():
        rows = truth[(truth["TYPE"] == model) & truth["in_catalog"].astype(bool)]
        ax.scatter(
            rows["x_pix"],
            rows["y_pix"],
            s=size,
            marker=marker,
            facecolors="none",
            edgecolors=colour,
            linewidths=0.8,
            label=f"{model} ({len(rows)})",
        )
    unlisted = truth[~truth["in_catalog"].astype(bool)]
    ax.scatter(
        unlisted["x_pix"],
        unlisted["y_pix"],
        s=2 * size,
        marker="x",
        color="magenta",
        linewidths=1.2,
        label=f"not in catalog ({len(unlisted)})",
    )
    ax.set_xlabel("x [pixel]")
    ax.set_ylabel("y [pixel]")
    ax.set_title(f"Simulated 7DT tile, band {band}: asinh stretch, {step}x{step} binned, NaN red")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.7)
    fig.colorbar(img, ax=ax, label="ADU", fraction=0.046, pad=0.04)
    return fig


def plot_sim_quicklook(sim_images: list[RawImage], sim_truth: pd.DataFrame) -> Figure:
    """Quick look at the reddest written band with the true sources marked by model."""
    image = sim_images[-1]
    return quicklook_figure(np.asarray(image.data), str(image.header["FILTER"]), sim_truth)
