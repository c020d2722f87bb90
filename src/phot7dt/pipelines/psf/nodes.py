"""Nodes of the psf stage: ePSF per band and grid cell, PSF choice, QA figures."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from phot7dt.config import section
from phot7dt.config.epsf import EpsfParams, MoffatPsfParams
from phot7dt.config.ingest import PlottingParams
from phot7dt.config.patch_run import PatchRunParams
from phot7dt.frames import Box, FrameSet
from phot7dt.json_values import json_safe
from phot7dt.parallel import map_ordered
from phot7dt.pipelines.psf import plots
from phot7dt.pipelines.psf.band_choice import CellOutcome, choose_band
from phot7dt.pipelines.psf.cell_task import CellResult
from phot7dt.pipelines.psf.fallback_shape import BandStars
from phot7dt.pipelines.psf.model_error import pooled_eta
from phot7dt.pipelines.psf.parallel import n_workers, run_cells
from phot7dt.plotting import Figure
from phot7dt.psf_grid import PSFChoice, PSFGrid, cell_boxes, cell_tag, occupied_cells

__all__ = ["build_epsf", "plot_epsf_qa"]

logger = logging.getLogger(__name__)


def _active_cells(
    catalog: pd.DataFrame, shape: tuple[int, int], ngrid: int
) -> set[tuple[int, int]]:
    """Cells holding at least one active (not excluded) catalog source."""
    for col in ("x_pix_white", "y_pix_white", "excluded_any"):
        if col not in catalog.columns:
            raise ValueError(f"flagged_catalog: missing column {col!r} (expected from ingest)")
    active = catalog[~catalog["excluded_any"].astype(bool)]
    return occupied_cells(active["x_pix_white"], active["y_pix_white"], shape, ngrid)


def _gaia_seeds(
    gaia: pd.DataFrame | None, frames: FrameSet, p: EpsfParams
) -> dict[str, pd.DataFrame | None]:
    """Working-frame positions and band magnitudes of GaiaXP seeds, per band."""
    bands = frames.bands
    if p.psfstar_mode == "sep" or not p.use_gaiaxp:
        return dict.fromkeys(bands)
    if gaia is None or len(gaia) == 0:
        logger.warning("epsf.psfstar_mode=%s but no GaiaXP rows: PSF stars come from SEP only"
                       "%s", p.psfstar_mode, " (none in gaia mode)" if p.psfstar_mode == "gaia"
                       else "")
        return dict.fromkeys(bands)
    for col in ("ra", "dec"):
        if col not in gaia.columns:
            raise ValueError(f"gaiaxp_synphot: missing column {col!r}")
    ra, dec = gaia["ra"].to_numpy(float), gaia["dec"].to_numpy(float)
    x, y = frames.wcs.all_world2pix(ra, dec, 0)
    seeds: dict[str, pd.DataFrame | None] = {}
    for band in bands:
        col = f"mag_{band}"
        if col not in gaia.columns:
            logger.warning("gaiaxp_synphot: no column %r; band %s uses SEP stars only", col, band)
            seeds[band] = None
            continue
        seeds[band] = pd.DataFrame({"x": x, "y": y, "mag": pd.to_numeric(gaia[col],
                                                                         errors="coerce")})
    return seeds


def _qa_record(res: CellResult, choice: PSFChoice) -> dict[str, Any]:
    """One summary row: counts, measurements, status and the PSF choice."""
    cand = res.candidates
    n_reason = cand["reason"].value_counts().to_dict() if len(cand) else {}
    m, b = res.metrics, res.build
    nan = float("nan")
    return {
        "band": res.band, "cell": cell_tag(res.row, res.col), "row": res.row, "col": res.col,
        "x0": res.box.x0, "y0": res.box.y0, "x1": res.box.x1, "y1": res.box.y1,
        "status": res.status, "message": res.message,
        "nstars_seed": int((cand["origin"] == "gaia").sum()) if len(cand) else 0,
        "nstars_candidates": len(cand), "nstars_sel": int(n_reason.get("", 0)),
        "nstars_extract": b.nstars_extract if b else 0, "nstars_used": res.nstars_used,
        "nstars_fitfail": (b.nstars_extract - b.nstars_used) if b else 0,
        "rejections": ",".join(f"{k}:{v}" for k, v in sorted(n_reason.items()) if k),
        "epsf_fwhm_pix": m.fwhm_pix if m else nan, "epsf_moffat_beta": m.moffat_beta if m else nan,
        "epsf_centre_offset_pix": m.centre_offset_pix if m else nan,
        "ee_r50_pix": m.ee_r50_pix if m else nan, "ee_r80_pix": m.ee_r80_pix if m else nan,
        "ee_r90_pix": m.ee_r90_pix if m else nan, "ee_2fwhm": m.ee_2fwhm if m else nan,
        "ee_edge": b.edge_flux_fraction if b else nan,
        "wing_radius_pix": b.wing_radius_pix if b else nan,
        "wing_flux_fraction": b.wing_flux_fraction if b else nan,
        "residual_rms": float(np.sqrt(np.mean(b.residual**2))) if b else nan,
        "build_iterations": b.iterations if b else 0,
        "build_converged": b.converged if b else False,
        "bkg_status": res.background.get("status", ""),
        "bkg_median": res.background.get("median"),
        "bkg_rms": res.background.get("rms"),
        "bkg_mask_fraction": res.background.get("mask_fraction"),
        "star_bkg_median": b.star_background.get("median", nan) if b else nan,
        "seconds": round(res.seconds, 3),
        "psf_model": choice.model, "psf_fwhm_pix": choice.fwhm_pix,
        "psf_beta": nan if choice.beta is None else choice.beta,
        "psf_fallback_level": choice.fallback_level,
        "psf_fallback_nstars": choice.fallback_nstars, "psf_reason": choice.reason,
        "psf_flux_error_frac": choice.flux_error_frac,
    }



def _band_stars(frames: FrameSet, band: str, cells: list[CellResult]) -> BandStars:
    """The band's accepted PSF stars by cell, for the fallback fits."""
    frame = frames.frame(band)
    by_cell = {(r.row, r.col): r.fit_stars for r in cells
               if r.fit_stars is not None and len(r.fit_stars)}
    return BandStars(by_cell, frame.sky_sigma, frame.egain / frame.scale, frame.fwhm_pix)


def _skipped(band: str, row: int, col: int, box: Box) -> CellResult:
    return CellResult(band, row, col, box, "skipped", "no active source in the cell",
                      pd.DataFrame(), {})


def build_epsf(
    frames: FrameSet,
    flagged_catalog: pd.DataFrame,
    gaiaxp_synphot: pd.DataFrame | None,
    epsf: dict,
    patch_run: dict,
    moffat_psf: dict,
    plotting: dict | None = None,
) -> tuple[PSFGrid, pd.DataFrame, list[CellResult]]:
    """Build the ePSF of every band in every active cell and choose each cell's PSF.

    Parameters
    ----------
    frames : FrameSet
        Working-frame images (memory-mapped; only cell regions are read).
    flagged_catalog : DataFrame
        Catalog with ``x_pix_white``, ``y_pix_white`` (pixels) and ``excluded_any``.
    gaiaxp_synphot : DataFrame or None
        GaiaXP synthetic photometry (``ra``, ``dec`` in deg, ``mag_{band}`` AB);
        None or empty to select stars with SEP only.
    epsf, patch_run, moffat_psf : dict
        Parameter sections.
    plotting : dict, optional
        The ``plotting`` section: cell thumbnails for the star-selection sheets are
        kept only when that sheet is drawn (``detail: full`` and
        ``epsf.save_patch_background_diagnostics``).

    Returns
    -------
    epsf_grid : PSFGrid
        PSF choice per band and cell, with build metadata.
    epsf_summary : DataFrame
        One row per band and cell (see ``_qa_record``).
    epsf_qa : list of CellResult
        Candidates, thumbnails, growth curves and residuals for the QA figures.
    """
    p = section(EpsfParams, epsf, "epsf")
    run = section(PatchRunParams, patch_run, "patch_run")
    moffat = section(MoffatPsfParams, moffat_psf, "moffat_psf")
    boxes = cell_boxes(frames.shape, p.epsf_ngrid)
    active = (
        _active_cells(flagged_catalog, frames.shape, p.epsf_ngrid)
        if p.skip_empty_epsf_patches else set(boxes)
    )
    logger.info("ePSF grid %dx%d: %d of %d cells active, %d band(s)", p.epsf_ngrid, p.epsf_ngrid,
                len(active), len(boxes), len(frames.bands))
    tasks = [(b, (r, c, boxes[(r, c)])) for b in frames.bands for (r, c) in sorted(active)]
    max_cutouts = (
        math.ceil(p.save_star_montage_max / max(len(active), 1))
        if p.save_star_local_background_diagnostics else 0
    )
    thumbnails = (p.save_patch_background_diagnostics
                  and section(PlottingParams, plotting or {}, "plotting").detail == "full")
    # The worker pool stays up: fit_patches takes it over (the workers and their imports
    # start once per run) and stops it when the fits are done.
    built = run_cells(frames, tasks, _gaia_seeds(gaiaxp_synphot, frames, p), p, max_cutouts,
                      moffat.fit_radius_fwhm, thumbnails)
    by_key = {(r.band, r.row, r.col): r for r in built}
    results = [by_key.get((band, r, c)) or _skipped(band, r, c, box)
               for band in frames.bands for (r, c), box in boxes.items()]
    band_choices = map_ordered(
        choose_band,
        [(_band_stars(frames, band, [r for r in built if r.band == band]),
          [CellOutcome.of(r) for r in results if r.band == band], run, moffat)
         for band in frames.bands],
        min(n_workers(p, len(frames.bands)), len(frames.bands)), "psf_choice", "band")
    flat = [c for band in band_choices for c in band]
    flat, eta_stars = _with_psf_errors(results, flat, p)
    choices, records = {}, {}
    for res, choice in zip(results, flat, strict=True):
        key = (res.band, res.row, res.col)
        choices[key], records[key] = choice, _qa_record(res, choice)
        records[key]["psf_error_nstars"] = eta_stars[key]
    for res in built:
        res.fit_stars = None
    summary = pd.DataFrame(list(records.values()))
    _log_summary(summary)
    qa = {key: json_safe(rec) for key, rec in records.items()}
    grid = PSFGrid(frames.shape, p.epsf_ngrid, tuple(frames.bands), choices, qa)
    return grid, summary, [r for r in results if r.status != "skipped"]


def _with_psf_errors(results: list[CellResult], choices: list[PSFChoice], p: EpsfParams
                     ) -> tuple[list[PSFChoice], dict]:
    """``choices`` with their moment field and PSF-model flux error, and the stars each
    error estimate used.

    ePSF cells take their own leave-one-out estimate shrunk towards the band's
    (:func:`~phot7dt.pipelines.psf.model_error.pooled_eta`); fallback cells and
    cells without an estimate the band's value; a band without any estimate
    ``psf_error_fallback_frac``.
    """
    keys = [(r.band, r.row, r.col) for r in results]
    by_key = dict(zip(keys, results, strict=True))
    if not p.psf_error_model:
        return [dataclasses.replace(c, moment_field=None if c.is_fallback or r.build is None
                                    else r.build.moment_field)
                for c, r in zip(choices, results, strict=True)], dict.fromkeys(keys, 0)
    band_eta, cell_eta = {}, {}
    for band in dict.fromkeys(r.band for r in results):
        cells = {k: r.build.flux_ratios for k, r in zip(keys, results, strict=True)
                 if r.band == band and r.build is not None}
        band_eta[band], per_cell = pooled_eta(cells, p.psf_error_shrink_stars)
        cell_eta.update(per_cell)
    out, used = [], {}
    for key, choice in zip(keys, choices, strict=True):
        eta, n = cell_eta.get(key, (float("nan"), 0))
        if choice.is_fallback or not math.isfinite(eta):
            eta, n = band_eta[key[0]], 0
            if not math.isfinite(eta):
                eta = p.psf_error_fallback_frac
        build = by_key[key].build
        field = None if choice.is_fallback or build is None else build.moment_field
        out.append(dataclasses.replace(choice, flux_error_frac=eta, moment_field=field))
        used[key] = n
    _log_psf_errors(keys, out)
    return out, used


def _log_psf_errors(keys: list, choices: list[PSFChoice]) -> None:
    by_band: dict[str, list[float]] = {}
    for (band, _, _), choice in zip(keys, choices, strict=True):
        by_band.setdefault(band, []).append(choice.flux_error_frac)
    for band, values in by_band.items():
        logger.info("PSF-model flux error %s: median %.2f %%, range %.2f-%.2f %%", band,
                    100 * np.median(values), 100 * min(values), 100 * max(values))


def _log_summary(summary: pd.DataFrame) -> None:
    built = summary[summary["status"] != "skipped"]
    for band, rows in built.groupby("band", sort=False):
        n_epsf = int((rows["psf_model"] == "epsf").sum())
        levels = rows.loc[rows["psf_model"] != "epsf", "psf_fallback_level"].value_counts()
        logger.info("ePSF %s: %d/%d cells use the ePSF, stars used median %.0f, FWHM median "
                    "%.2f px%s", band, n_epsf, len(rows), rows["nstars_used"].median(),
                    rows["epsf_fwhm_pix"].median(),
                    "; fallbacks " + ", ".join(f"{k}: {v}" for k, v in levels.items())
                    if len(levels) else "")


def plot_epsf_qa(
    epsf_grid: PSFGrid, epsf_qa: list[CellResult], epsf: dict, plotting: dict
) -> dict[str, Callable[[], Figure]]:
    """QA figures per band, as lazily drawn partitions ``<kind>_<band>``.

    Kinds (each switched by an ``epsf`` key): ``stamps`` (all cells' PSFs,
    ``save_epsf_montage``), ``stars`` (cells with candidate and used stars,
    ``save_patch_background_diagnostics``), ``growth`` (encircled energy,
    ``save_growth_curve``), ``residuals`` (median residual of used stars,
    ``save_residual_diagnostics``), ``star_cutouts``
    (``save_star_local_background_diagnostics``). ``plotting.detail: summary``
    draws only ``stamps`` and ``growth``.
    """
    p = section(EpsfParams, epsf, "epsf")
    summary = section(PlottingParams, plotting, "plotting").detail == "summary"
    kinds = {
        "stamps": (p.save_epsf_montage, plots.stamp_sheet),
        "stars": (p.save_patch_background_diagnostics, plots.star_selection_sheet),
        "growth": (p.save_growth_curve, plots.growth_curve_sheet),
        "residuals": (p.save_residual_diagnostics, plots.residual_sheet),
        "star_cutouts": (p.save_star_local_background_diagnostics, plots.star_cutout_sheet),
    }
    figures: dict[str, Callable[[], Figure]] = {}
    for band in epsf_grid.bands:
        cells = [r for r in epsf_qa if r.band == band]
        for kind, (enabled, draw) in kinds.items():
            if enabled and not (summary and kind not in SUMMARY_KINDS):
                figures[f"{kind}_{band}"] = _lazy(draw, epsf_grid, band, cells, p)
    return figures


#: QA figure kinds drawn under ``plotting.detail: summary``.
SUMMARY_KINDS = ("stamps", "growth")


def _lazy(draw, grid: PSFGrid, band: str, cells: list[CellResult], p: EpsfParams):
    return lambda: draw(grid, band, cells, p)
