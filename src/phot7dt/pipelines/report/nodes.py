"""Nodes of the report pipeline: figures drawn here, the run's headline numbers, the HTML page."""

from __future__ import annotations

import fnmatch
import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from phot7dt.catalog_columns import catalog_summary, fitted_bands, numeric_column
from phot7dt.config import section
from phot7dt.config.report import ReportParams
from phot7dt.datasets.patch_models import PatchModels
from phot7dt.frames import FrameSet
from phot7dt.json_values import json_safe
from phot7dt.pipelines.report.html import render_report
from phot7dt.pipelines.report.plots import patch_overview_figure, residual_montage_figure
from phot7dt.pipelines.report.residuals import choose_sources, fitted_sources, residual_stamp
from phot7dt.plotting import Figure

logger = logging.getLogger(__name__)

#: The figures the report can embed: catalog dataset -> its path under 08_reporting (without
#: .png; a folder for datasets of several PNGs). Section patterns match these paths.
REPORT_FIGURES = {
    "white_before_crop_plot": "ingest/white_before_crop",
    "white_after_crop_plot": "ingest/white_after_crop",
    "source_overlay_plot": "ingest/white_overlay",
    "gaia_augmentation_overlay": "gaia_augment/augmentation_overlay",
    "bright_mask_overlay": "masking/bright_mask_overlay",
    "epsf_plots": "psf/plots",
    "patch_fit_plots": "fitting/patches",
    "zp_offset_plot": "zp/zp_offset_vs_wavelength",
    "zp_band_plots": "zp/zp_vs_mag",
    "validation_flux_plots": "validate/flux",
    "validation_pull_plots": "validate/pulls",
    "validation_recovery_plots": "validate/recovery",
    "patch_overview_plot": "report/patch_overview",
    "residual_montage_plot": "report/residual_montage",
}


def plot_residual_montage(
    output_catalog: pd.DataFrame, frames: FrameSet, patch_models: PatchModels,
    report: dict[str, Any]
) -> Figure:
    """Data, fitted model (``patch_models``) and residual of a few fitted stars and galaxies
    in one band."""
    params = section(ReportParams, report, "report")
    bands = fitted_bands(output_catalog)
    band = params.residual_band or (bands[len(bands) // 2] if bands else "")
    if band and band not in bands:
        raise ValueError(f"report.residual_band: {band!r} is not a fitted band; bands are {bands}")
    stamps = []
    if band:
        fitted = fitted_sources(output_catalog, band)
        chosen = choose_sources(
            fitted, params.residual_n_stars, params.residual_n_galaxies, params.residual_min_snr
        )
        stamps = [
            residual_stamp(row, frames, patch_models, band, params.residual_stamp_pix)
            for _, row in chosen.iterrows()
        ]
        stamps = [s for s in stamps if s is not None]
    logger.info("report: residual montage of %d source(s) in %s", len(stamps), band or "no band")
    return residual_montage_figure(stamps, band)


def plot_patch_overview(
    white_stack: tuple[np.ndarray, Any], patches: pd.DataFrame, report: dict[str, Any]
) -> Figure:
    """The patch grid over the downsampled white stack."""
    params = section(ReportParams, report, "report")
    pixels, _header = white_stack
    return patch_overview_figure(pixels, patches, params.overview_max_pix)


def _excluded_reasons(catalog: pd.DataFrame) -> dict[str, int]:
    if "excluded_reason" not in catalog:
        return {}
    reasons = catalog["excluded_reason"].fillna("").astype(str)
    return dict(Counter(r.strip() for text in reasons for r in text.split(",") if r.strip()))


def _band_rows(catalog: pd.DataFrame, zp_summary: pd.DataFrame | None) -> list[dict[str, Any]]:
    zps = {} if zp_summary is None else {str(r["band"]): r for _, r in zp_summary.iterrows()}
    rows = []
    for band in fitted_bands(catalog):
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = numeric_column(catalog, f"FLUX_{band}_fit") / numeric_column(
                catalog, f"FLUXERR_{band}_fit"
            )
        snr = snr[np.isfinite(snr)]
        zp = zps.get(band, {})
        rows.append(
            {
                "band": band,
                "n_measured": int(snr.size),
                "median_snr": float(np.median(snr)) if snr.size else math.nan,
                "zp_median": float(zp.get("zp_median", math.nan)),
                "zp_err": float(zp.get("zp_err", math.nan)),
                "n_zp_stars": int(zp.get("n_kept", 0) or 0),
            }
        )
    return rows


def summarise_run(
    output_catalog: pd.DataFrame,
    zp_summary: pd.DataFrame | None,
    fit_run_report: Mapping[str, Any] | None,
    validation_metrics: Mapping[str, Any] | None,
    catalog_provenance: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Headline numbers of a run: sources, patches, per-band S/N and ZP, validation and
    the catalog's provenance.

    The validation is left out unless it was computed on this very catalog (its
    ``catalog_utc`` matches the provenance's), so a report never shows the numbers of
    an earlier run in the same ``work_dir``.
    """
    patches = {
        k: (fit_run_report or {}).get(k) for k in ("n_patches", "n_fitted", "n_failed", "seconds")
    }
    provenance = dict(catalog_provenance or {})
    validation = dict(validation_metrics or {"truth_available": False})
    if validation_metrics and validation.get("catalog_utc") != provenance.get("catalog_utc"):
        logger.info("report: validation.json is of another catalog than this run's; left out")
        validation = {"truth_available": False}
    summary = {
        "catalog": catalog_summary(output_catalog),
        "excluded_reasons": _excluded_reasons(output_catalog),
        "patches": patches,
        "bands": _band_rows(output_catalog, zp_summary),
        "validation": {
            "truth_available": bool(validation.get("truth_available")),
            **validation.get("headline", {}),
        },
        "provenance": provenance,
    }
    return json_safe(summary)


def select_figures(
    figures: Mapping[str, Callable[[], bytes]], sections: Mapping[str, list[str]]
) -> dict[str, list[tuple[str, bytes]]]:
    """PNG bytes of each section's figures, in pattern order then name order."""
    selected: dict[str, list[tuple[str, bytes]]] = {}
    for title, patterns in sections.items():
        names = [n for p in patterns for n in sorted(fnmatch.filter(figures, p))]
        selected[title] = [(n, figures[n]()) for n in dict.fromkeys(names)]
    return selected


def figure_paths(figures: Mapping[str, Any]) -> dict[str, Callable[[], bytes]]:
    """The loaded figure datasets (:data:`REPORT_FIGURES`) keyed by path under 08_reporting
    without ``.png``: PNG bytes of a single figure, the partitions (lazy loaders) of a
    folder, nothing for an absent (None) figure."""
    out: dict[str, Callable[[], bytes]] = {}
    for name, value in figures.items():
        path = REPORT_FIGURES[name]
        if isinstance(value, bytes | bytearray):
            out[path] = lambda png=bytes(value): png
        elif isinstance(value, Mapping):
            out.update({f"{path}/{key.removesuffix('.png')}": loader
                        for key, loader in value.items()})
    return out


def build_report(
    run_summary: dict[str, Any], report: dict[str, Any], **figures: Any
) -> str:
    """One self-contained HTML page (figures embedded as base64 PNG, no external URL).

    ``figures``: the figure datasets of :data:`REPORT_FIGURES`, by dataset name (a
    dataset not passed, or loaded as None, has no figure).
    """
    params = section(ReportParams, report, "report")
    figures = figure_paths(figures)
    if not run_summary.get("validation", {}).get("truth_available"):
        # validation figures belong to the validation shown, never to an earlier run's
        figures = {k: v for k, v in figures.items() if not k.startswith("validate/")}
    sections = select_figures(figures, params.figure_sections)
    logger.info(
        "report: %d figure(s) in %d section(s)",
        sum(len(v) for v in sections.values()),
        len(sections),
    )
    return render_report(params.title, run_summary, sections, params.max_figure_width_px)
