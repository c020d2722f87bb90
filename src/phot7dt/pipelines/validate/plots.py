"""Validation figures: flux ratio versus true magnitude, pull histograms, position, shape
and zero-point recovery. Each function takes the validation tables and returns a Figure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from phot7dt.config import section
from phot7dt.config.validate import ValidateParams
from phot7dt.pipelines.validate.metrics import CLASSES, robust_sigma
from phot7dt.plotting import Figure

_COLOURS = {"star": "tab:blue", "galaxy": "tab:orange"}
_PLURAL = {"star": "stars", "galaxy": "galaxies"}
_RATIO_RANGE = (0.5, 1.5)
_PULL_RANGE = 6.0


def _running_median(x: np.ndarray, y: np.ndarray, n_bins: int = 8) -> tuple[np.ndarray, np.ndarray]:
    if x.size < 2 * n_bins:
        return np.array([]), np.array([])
    edges = np.quantile(x, np.linspace(0, 1, n_bins + 1))
    centres, medians = [], []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (x >= low) & (x <= high)
        if inside.sum() >= 3:
            centres.append(np.median(x[inside]))
            medians.append(np.median(y[inside]))
    return np.array(centres), np.array(medians)


def flux_ratio_figure(fluxes: pd.DataFrame, band: str) -> Figure:
    """Fitted over true flux versus true AB magnitude for one band, stars and galaxies.

    Points beyond the axis range are drawn on its edge; lines are running medians.
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for cls in CLASSES:
        rows = fluxes[fluxes["source_class"] == cls]
        mag = rows["mag_true"].to_numpy(float)
        ratio = (rows["flux_fit"] / rows["flux_true"]).to_numpy(float)
        ax.scatter(
            mag,
            np.clip(ratio, *_RATIO_RANGE),
            s=8,
            alpha=0.5,
            color=_COLOURS[cls],
            label=f"{_PLURAL[cls]} (n={len(rows)}, scatter {robust_sigma(ratio):.3f})",
        )
        xm, ym = _running_median(mag, ratio)
        ax.plot(xm, ym, color=_COLOURS[cls], lw=2)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(
        xlabel=f"true {band} magnitude (AB)",
        ylabel="fitted / true flux",
        ylim=_RATIO_RANGE,
        title=f"Flux recovery, {band}",
    )
    ax.legend(loc="upper left", fontsize=8)
    return fig


def pull_histogram_figure(fluxes: pd.DataFrame, bands: list[str]) -> Figure:
    """Histograms of ``(fit - true) / FLUXERR`` per band, with the unit normal law."""
    from matplotlib.figure import Figure
    ncol = min(4, len(bands))
    nrow = -(-len(bands) // ncol)
    fig = Figure(figsize=(3.2 * ncol, 2.6 * nrow), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrow, ncol, sharex=True, squeeze=False)).ravel()
    grid = np.linspace(-_PULL_RANGE, _PULL_RANGE, 200)
    for ax, band in zip(axes, bands, strict=False):
        rows = fluxes[fluxes["band"] == band]
        for cls in CLASSES:
            sub = rows[rows["source_class"] == cls]
            pull = ((sub["flux_fit"] - sub["flux_true"]) / sub["fluxerr_fit"]).to_numpy(float)
            pull = pull[np.isfinite(pull)]
            if pull.size:
                ax.hist(
                    np.clip(pull, -_PULL_RANGE, _PULL_RANGE),
                    bins=40,
                    density=True,
                    histtype="step",
                    color=_COLOURS[cls],
                    label=f"{cls} σ={np.std(pull):.2f} (rob. {robust_sigma(pull):.2f})",
                )
        ax.plot(grid, np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), "k--", lw=1, label="N(0,1)")
        ax.set(title=band, xlabel="pull (fit − true) / error", xlim=(-_PULL_RANGE, _PULL_RANGE))
        ax.legend(fontsize=6, loc="upper left")
    for ax in axes[len(bands) :]:
        ax.set_visible(False)
    return fig


def zp_recovery_figure(zero_points: list[dict[str, Any]]) -> Figure:
    """Measured minus true zero-point offset versus band wavelength, with ``zp_err`` bars."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.add_subplot()
    table = pd.DataFrame(zero_points)
    if not table.empty:
        err = table["zp_err"].astype(float).fillna(0.0)
        ax.errorbar(
            table["wavelength_nm"],
            1000 * table["zp_error"].astype(float),
            yerr=1000 * err,
            fmt="o",
            color="tab:blue",
            capsize=3,
        )
        for row in table.itertuples():
            ax.annotate(
                row.band,
                (row.wavelength_nm, 1000 * row.zp_error),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set(
        xlabel="band wavelength (nm)",
        ylabel="ZP measured − true (mmag)",
        title="Zero-point recovery: (zp_median − zp_ref) − (zp_true − ZP_AUTO)",
    )
    return fig


def position_recovery_figure(sources: pd.DataFrame) -> Figure:
    """Fitted minus true working-frame position (px): offsets and radius versus S/N."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    used = sources[sources["in_output"] & ~sources["excluded"]]
    for cls in CLASSES:
        rows = used[used["source_class"] == cls]
        left.scatter(rows["dx"], rows["dy"], s=6, alpha=0.5, color=_COLOURS[cls], label=cls)
        right.scatter(
            rows["snr_best"],
            np.hypot(rows["dx"], rows["dy"]),
            s=6,
            alpha=0.5,
            color=_COLOURS[cls],
            label=cls,
        )
    left.set(
        xlabel="Δx fit − true (px)",
        ylabel="Δy fit − true (px)",
        xlim=(-1.5, 1.5),
        ylim=(-1.5, 1.5),
        aspect="equal",
        title="Position offsets",
    )
    right.set(
        xscale="log",
        yscale="log",
        xlabel="best-band S/N (true flux / error)",
        ylabel="|offset| (px)",
        title="Offset versus S/N",
    )
    left.legend(fontsize=8)
    return fig


def shape_recovery_figure(sources: pd.DataFrame, theta_min_ell: float) -> Figure:
    """Galaxies: fitted versus true Re (px) and ELL, and THETA error versus true ELL."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter
    fig = Figure(figsize=(12, 4), layout="constrained")
    ax_re, ax_ell, ax_theta = fig.subplots(1, 3)
    gal = sources[
        sources["in_output"] & ~sources["excluded"] & (sources["source_class"] == "galaxy")
    ]
    ax_re.scatter(gal["re_true"], gal["re_fit"], s=6, alpha=0.5, color=_COLOURS["galaxy"])
    ax_ell.scatter(gal["ell_true"], gal["ell_fit"], s=6, alpha=0.5, color=_COLOURS["galaxy"])
    elongated = gal[gal["ell_true"] >= theta_min_ell]
    ax_theta.scatter(
        elongated["ell_true"], elongated["dtheta"], s=6, alpha=0.5, color=_COLOURS["galaxy"]
    )
    lim = [0.5, max(2.0, float(np.nanmax(gal["re_true"], initial=2.0)) * 1.2)]
    ax_re.plot(lim, lim, "k--", lw=0.8)
    ax_ell.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax_theta.axhline(0, color="k", lw=0.8)
    ax_re.set(
        xscale="log",
        yscale="log",
        xlim=lim,
        ylim=lim,
        xlabel="true Re (px)",
        ylabel="fitted Re (px)",
        title="Half-light radius",
    )
    for axis in (ax_re.xaxis, ax_re.yaxis):  # plain numbers at 1-2-5 steps, no crowded minor labels
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    ax_ell.set(
        xlim=(0, 1), ylim=(0, 1), xlabel="true ELL", ylabel="fitted ELL", title="Ellipticity"
    )
    ax_theta.set(
        ylim=(-90, 90),
        xlabel="true ELL",
        ylabel="THETA fit − true (deg)",
        title=f"Position angle (ELL ≥ {theta_min_ell:g})",
    )
    return fig


def plot_flux_recovery(validation_fluxes: pd.DataFrame) -> dict[str, Figure]:
    """Node: ``flux_ratio_<band>.png`` per band (nothing without truth)."""
    return {
        f"flux_ratio_{band}.png": flux_ratio_figure(rows, str(band))
        for band, rows in validation_fluxes.groupby("band", sort=False)
    }


def plot_pull_histograms(validation_fluxes: pd.DataFrame) -> dict[str, Figure]:
    """Node: ``pull_histograms.png`` (nothing without truth)."""
    if validation_fluxes.empty:
        return {}
    bands = list(dict.fromkeys(validation_fluxes["band"].astype(str)))
    return {"pull_histograms.png": pull_histogram_figure(validation_fluxes, bands)}


def plot_truth_recovery(
    validation_sources: pd.DataFrame, validation_metrics: dict[str, Any], validate: dict[str, Any]
) -> dict[str, Figure]:
    """Node: ``position_recovery.png``, ``shape_recovery.png``, ``zp_recovery.png``."""
    if not validation_metrics.get("truth_available"):
        return {}
    theta_min_ell = section(ValidateParams, validate, "validate").theta_min_ell
    figures = {
        "position_recovery.png": position_recovery_figure(validation_sources),
        "shape_recovery.png": shape_recovery_figure(validation_sources, theta_min_ell),
    }
    if validation_metrics.get("zero_points"):
        figures["zp_recovery.png"] = zp_recovery_figure(validation_metrics["zero_points"])
    return figures
