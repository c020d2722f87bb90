"""Zero-point diagnostic figures: ZP versus Gaia magnitude per band, ZP offset versus wavelength."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Marker style of each star status in the per-band plots.
_STATUS_STYLE = {
    "nonconverged": dict(marker="D", s=18, color="0.6", alpha=0.6,
                         label="non-converged / unreliable"),
    "ambiguous": dict(marker="^", s=22, color="tab:orange", alpha=0.8,
                      label="ambiguous Gaia match"),
    "clipped": dict(marker="x", s=30, color="tab:red", alpha=0.9, label="clipped"),
    "saturated": dict(marker="*", s=60, color="tab:purple", alpha=0.8,
                      label="saturated core, not used (zp.use_saturated: false)"),
}


def zero_point_band_figure(
    stars: pd.DataFrame,
    summary: dict[str, Any],
    *,
    mag_range: tuple[float, float] | None = None,
    zp_half_range: float | None = None,
) -> Figure:
    """Per-star zero point versus Gaia magnitude of one band.

    Parameters
    ----------
    stars : DataFrame
        The band's rows of ``zp_per_object``.
    summary : dict
        The band's row of ``zp_summary``.
    mag_range : (float, float), optional
        Magnitude axis limits (the constrained view); full data range when None.
    zp_half_range : float, optional
        Zero-point axis half range around the median (mag); full range when None.
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7.0, 4.6))  # fixed layout: drawn once, not twice
    ax = fig.add_axes((0.11, 0.11, 0.86, 0.76))
    zp, scatter, err = summary["zp_median"], summary["zp_scatter"], summary["zp_err"]
    if math.isfinite(zp):
        if math.isfinite(scatter) and scatter > 0:
            ax.axhspan(zp - scatter, zp + scatter, color="0.85", alpha=0.6,
                       label=f"median ± σ_MAD ({scatter:.3f})")
        ax.axhline(zp, color="tab:blue", lw=1.5, label=f"ZP = {zp:.4f} ± {err:.4f}")
    for status, style in _STATUS_STYLE.items():
        part = stars[stars["status"] == status]
        if len(part):
            style = {**style, "label": f"{style['label']} ({len(part)})"}
            ax.scatter(part["mag_gaia"], part["zp_i"], **style)
    kept = stars[stars["status"] == "kept"]
    if len(kept):
        ax.errorbar(kept["mag_gaia"], kept["zp_i"], yerr=kept["zp_i_err"], fmt="o", ms=4,
                    mfc="none", mec="k", ecolor="0.5", elinewidth=0.7, capsize=0,
                    label=f"kept ({len(kept)})")
    _ring_saturated_used(ax, stars)
    if mag_range is not None:
        ax.set_xlim(*mag_range)
    if zp_half_range is not None and math.isfinite(zp):
        ax.set_ylim(zp - zp_half_range, zp + zp_half_range)
    n_outside = stars_off_axes(stars, summary, mag_range, zp_half_range)
    view = "constrained view" if mag_range is not None else "full range"
    title = f"{summary['band']}: zero point from GaiaXP stars ({view})"
    if n_outside:
        title += f", {n_outside} star(s) off axes"
    if summary.get("reason"):
        title += f"\nno ZP: {summary['reason']}"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("GaiaXP synthetic AB magnitude (mag)")
    # plain text, not mathtext: a mathtext label is parsed again for every figure
    ax.set_ylabel("GaiaXP mag + 2.5 log₁₀(fitted flux) (mag)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8, framealpha=0.8)
    return fig


def _ring_saturated_used(ax, stars: pd.DataFrame) -> None:
    """Ring the saturated-core stars that entered the fit (``zp.use_saturated: true``)."""
    if "saturated_core" not in stars:
        return
    used = stars[stars["saturated_core"].astype(bool) & stars["status"].isin(["kept", "clipped"])]
    if len(used):
        ax.scatter(used["mag_gaia"], used["zp_i"], marker="o", s=110, facecolors="none",
                   edgecolors="tab:purple", linewidths=1.4,
                   label=f"saturated core, fitted from the wings ({len(used)})")


def stars_off_axes(stars: pd.DataFrame, summary: dict[str, Any],
                   mag_range: tuple[float, float] | None, zp_half_range: float | None) -> int:
    """Stars of a band outside the magnitude range or ``zp_median ± zp_half_range``."""
    outside = np.zeros(len(stars), bool)
    if mag_range is not None:
        outside |= _outside(stars["mag_gaia"], *mag_range)
    zp = summary["zp_median"]
    if zp_half_range is not None and math.isfinite(zp):
        outside |= _outside(stars["zp_i"], zp - zp_half_range, zp + zp_half_range)
    return int(outside.sum())


def _outside(values: pd.Series, lo: float, hi: float) -> np.ndarray:
    data = values.to_numpy(dtype=float)
    return (data < lo) | (data > hi)


def zero_point_offset_figure(summary: pd.DataFrame) -> Figure:
    """``zp_median - zp_ref`` with its error per band versus central wavelength."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(9.0, 4.6))  # fixed layout: drawn once, not twice
    ax = fig.add_axes((0.085, 0.11, 0.895, 0.79))
    ax.axhline(0.0, color="0.4", lw=1, ls="--", label="nominal zp_ref (ZP_AUTO)")
    placed = summary[np.isfinite(summary["wavelength_nm"].to_numpy(dtype=float))]
    good = placed[np.isfinite(placed["zp_median"].to_numpy(dtype=float))]
    failed = placed[~np.isfinite(placed["zp_median"].to_numpy(dtype=float))]
    if len(good):
        ax.errorbar(good["wavelength_nm"], good["zp_offset"], yerr=good["zp_err"], fmt="o",
                    ms=5, color="tab:blue", ecolor="tab:blue", capsize=2,
                    label="zp_median − zp_ref ± zp_err")
        for wavelength, offset, band in good[["wavelength_nm", "zp_offset", "band"]].itertuples(
            index=False
        ):
            ax.annotate(band, (wavelength, offset), textcoords="offset points", xytext=(0, 7),
                        ha="center", fontsize=7, color="0.3")
    if len(failed):
        ax.scatter(failed["wavelength_nm"], np.zeros(len(failed)), marker="x", color="tab:red",
                   label=f"no zero point ({len(failed)} band(s))")
    unplaced = sorted(set(summary["band"]) - set(placed["band"]))
    title = "Zero-point offset from the nominal scale per band"
    if unplaced:
        title += f"\n(no wavelength known for: {', '.join(unplaced)})"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("band central wavelength (nm)")
    ax.set_ylabel("zp_median − zp_ref (mag)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8, framealpha=0.8)
    return fig
