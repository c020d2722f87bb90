"""Nodes of the fitting stage: parallel patch fits, the merged catalog, the fit status counts.

A failed patch never stops the run: its rows get ``fit_status`` ``patch_failed``,
the catalogs are marked partial and the run ends with a non-zero exit status
(``phot7dt.hooks.RunHooks``) after every later stage has written its outputs.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits

from phot7dt.catalog_columns import merge_key
from phot7dt.config import section
from phot7dt.config.ingest import PlottingParams, SourceSaturationCutParams
from phot7dt.config.patch_run import PatchRunParams
from phot7dt.config.report import ReportParams
from phot7dt.config.scene import MergeParams, SceneParams, SkyArtefactParams
from phot7dt.datasets.patch_models import ModelImage, PatchModels
from phot7dt.datasets.patch_results_dataset import PatchResultStore
from phot7dt.frames import FrameSet, roi_box
from phot7dt.parallel import map_unordered, shutdown_workers
from phot7dt.pipelines.fitting import merge, plots, status
from phot7dt.pipelines.fitting.patch_task import PatchOutcome, PatchTask, run_patch_task
from phot7dt.pipelines.fitting.patch_views import ModelPlan, patch_view, summary_patches
from phot7dt.pipelines.fitting.tasks import build_tasks, detach_psfs, run_detached_task
from phot7dt.plotting import Figure
from phot7dt.progress import progress
from phot7dt.psf_grid import PSFGrid

__all__ = ["count_fit_statuses", "fit_patches", "merge_fits", "plot_patch_fits"]

logger = logging.getLogger(__name__)


def _record(tag: str, status: str, meta: dict[str, Any], error: str = "", trace: str = "") -> dict:
    return {
        "patch_tag": tag,
        "status": status,
        "n_sources": meta.get("n_sources"),
        "n_halo_sources": meta.get("n_halo_sources"),
        "seconds": meta.get("seconds"),
        "sky": meta.get("sky"),
        "error": error,
        "traceback": trace,
    }


def _outcome_chunk(outcome: PatchOutcome, plan: ModelPlan, task: PatchTask) -> tuple:
    """The ``(patch_results, patch_models)`` partitions of one finished patch, and its record."""
    if outcome.failed:
        logger.error("patch %s failed: %s", outcome.tag, outcome.error)
        _, drop = plan.keys(outcome.tag, None)
        record = _record(outcome.tag, "failed", outcome.meta, outcome.error, outcome.traceback)
        return {outcome.tag: None}, dict.fromkeys(drop), record
    keep, drop = plan.keys(outcome.tag, _converged(outcome.table))
    models = dict.fromkeys(drop)
    for key in keep:
        band = key.split("/", 1)[1]
        if band in outcome.models:
            models[key] = ModelImage(outcome.models[band], task.roi.x0, task.roi.y0)
    return {outcome.tag: (outcome.table, outcome.meta)}, models, _record(
        outcome.tag, "fitted", outcome.meta)


def _converged(table: pd.DataFrame) -> pd.Series:
    return table["opt_converged"] if "opt_converged" in table else pd.Series([], dtype=bool)


def _model_plan(bands: tuple[str, ...], run: PatchRunParams, plotting: dict,
                report: dict) -> ModelPlan:
    """What model images the QA figures will draw (see :class:`ModelPlan`)."""
    detail = section(PlottingParams, plotting, "plotting").detail
    keep = "none" if run.no_patch_overview and run.no_cutouts else (
        "all" if detail == "full" else "summary")
    montage = section(ReportParams, report, "report")
    band = montage.residual_band or (bands[len(bands) // 2] if bands else None)
    wanted = montage.residual_n_stars + montage.residual_n_galaxies > 0
    return ModelPlan(bands, keep, band if wanted else None)


def fit_patches(  # noqa: PLR0913 - one input per upstream product
    patches: pd.DataFrame,
    patch_payloads: pd.DataFrame,
    frames: FrameSet,
    bright_mask: tuple[np.ndarray | None, Any],
    epsf_grid: PSFGrid,
    previous_patch_results: PatchResultStore,
    patch_run: dict,
    scene: dict,
    source_saturation_cut: dict,
    sky_and_artefacts: dict,
    plotting: dict,
    report: dict,
) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """Fit every patch in worker processes, yielding each result as soon as it is done.

    A generator node: kedro saves every yielded chunk at once, so the results of
    finished patches are on disk while the others run (and survive a crash).

    Parameters
    ----------
    patches, patch_payloads : DataFrame
        Patch geometry and per-patch sources (patching stage).
    frames : FrameSet
        Memory-mapped frames; each worker cuts its patch's region.
    bright_mask : (mask, header)
        uint8 working-frame mask (1 = masked in every band).
    epsf_grid : PSFGrid
        PSF of every band and ePSF cell.
    previous_patch_results : PatchResultStore
        The results folder as it was before this run (``patch_run.resume`` skips
        the patches finished there).
    patch_run, scene, source_saturation_cut, sky_and_artefacts : dict
        Parameter sections (``source_saturation_cut``: how saturated pixels are masked;
        ``sky_and_artefacts``: residual background and artefact pixels).
    plotting, report : dict
        Sections saying which fitted model images the QA figures draw (:class:`ModelPlan`).

    Yields
    ------
    patch_results : dict
        ``{tag: (table, meta)}`` of a finished patch, ``{tag: None}`` for a failed
        one (and, first, for every patch about to be fitted: stale results go).
    patch_models : dict
        ``{"<tag>/<band>": ModelImage or None}``: model images kept or dropped.
    fit_run_report : dict
        Run report so far (``complete`` false until the last chunk): counts and one
        record per patch (``status`` fitted / resumed / failed, sources, seconds,
        error and traceback of failures).
    """
    run = section(PatchRunParams, patch_run, "patch_run")
    engine = section(SceneParams, scene, "scene")
    saturation = section(
        SourceSaturationCutParams, source_saturation_cut, "source_saturation_cut"
    )
    cleaning = section(SkyArtefactParams, sky_and_artefacts, "sky_and_artefacts")
    tasks = build_tasks(
        patches,
        patch_payloads,
        frames,
        bright_mask[0],
        epsf_grid,
        run,
        engine,
        saturation,
        merge_key(patch_payloads),
        cleaning,
    )
    plan = _model_plan(tuple(frames.bands), run, plotting, report)
    tasks = [dataclasses.replace(t, model_bands=plan.task_bands) for t in tasks]
    records = []
    if run.resume:
        done = [t for t in tasks if previous_patch_results.has(t.tag)]
        for t in done:
            records.append(_record(t.tag, "resumed", previous_patch_results.read_meta(t.tag)))
            plan.seen(t.tag, _converged(previous_patch_results.read_table(t.tag)))
        tasks = [t for t in tasks if not previous_patch_results.has(t.tag)]
        logger.info("resume: %d patch(es) already fitted, %d to fit", len(done), len(tasks))
    start = time.perf_counter()
    yield ({t.tag: None for t in tasks}, {f"{t.tag}/{b}": None for t in tasks for b in plan.bands},
           _report(records, 0.0, complete=False))
    by_tag = {t.tag: t for t in tasks}
    # On a cluster each ePSF cell's PSFs travel once per worker, not with every patch.
    function, items, shared = run_patch_task, tasks, None
    if run.dask_scheduler:
        function, (items, shared) = run_detached_task, detach_psfs(tasks)
    outcomes = map_unordered(
        function,
        items,
        max_workers=run.max_workers,
        threads_per_process=run.threads_per_process,
        dask_scheduler=run.dask_scheduler,
        shared=shared,
    )
    try:
        for outcome in progress(outcomes, total=len(tasks), desc="fit_patches", unit="patch"):
            results, models, record = _outcome_chunk(outcome, plan, by_tag[outcome.tag])
            records.append(record)
            yield results, models, _report(records, time.perf_counter() - start, complete=False)
    finally:
        if not run.dask_scheduler:  # idle, the workers would hold their memory to the end
            shutdown_workers()
    yield {}, {}, _report(records, time.perf_counter() - start)


def _report(records: list[dict], seconds: float, complete: bool = True) -> dict[str, Any]:
    records = sorted(records, key=lambda r: r["patch_tag"])
    counts = {s: sum(r["status"] == s for r in records) for s in ("fitted", "resumed", "failed")}
    if not complete:
        return {"complete": False, "n_patches": len(records), **{f"n_{k}": v for k, v in
                counts.items()}, "seconds": round(seconds, 3), "patches": records}
    logger.info(
        "fit_patches: %d fitted, %d resumed, %d failed in %.1f s",
        counts["fitted"],
        counts["resumed"],
        counts["failed"],
        seconds,
    )
    failed = [r["patch_tag"] for r in records if r["status"] == "failed"]
    if failed:
        logger.error(
            "fit_patches: %d patch(es) failed: %s (tracebacks in the fit run report)",
            len(failed),
            ", ".join(failed),
        )
    return {
        "complete": True,
        "n_patches": len(records),
        **{f"n_{k}": v for k, v in counts.items()},
        "seconds": round(seconds, 3),
        "failed_patches": failed,
        "patches": records,
    }


def merge_fits(
    active_catalog: pd.DataFrame,
    patch_payloads: pd.DataFrame,
    patch_results: PatchResultStore,
    fit_run_report: dict[str, Any],
    wcs_snapshot: tuple[Any, fits.Header],
    wcs_reference: fits.Header | None,
    frames: FrameSet,
    patch_run: dict,
    merge_params: dict,
) -> pd.DataFrame:
    """Every row of ``active_catalog`` plus the fit columns of its patch (left join).

    Parameters
    ----------
    active_catalog : DataFrame
        Catalog of the run (excluded rows included).
    patch_payloads : DataFrame
        Gives each source's patch (``patch_tag``/``epsf_tag`` for rows of failed patches too).
    patch_results : PatchResultStore
        Per-patch tables written by ``fit_patches``.
    fit_run_report : dict
        ``fit_patches`` report: which patches were fitted, resumed or failed.
    wcs_snapshot : (None, header)
        Working-frame WCS for ``RA_fit``/``DEC_fit``.
    wcs_reference : Header or None
        Header of the ``merge.wcs_fits`` file (dataset ``wcs_reference``); when given,
        its celestial WCS is used instead of the snapshot.
    frames : FrameSet
        Gives the bands: every ``FLUX_{band}_fit`` column exists even if no patch was fitted.
    patch_run, merge_params : dict
        ``patch_run`` (single- or multi-band column names) and ``merge`` sections.

    Returns
    -------
    merged_catalog : DataFrame
        Catalog columns, then the fit columns with ``RA_fit``/``DEC_fit`` (deg),
        ``fit_is_reliable``, ``fit_status`` (:mod:`.status`; ``fit_status_{band}``
        in single-band mode) and ``catalog_is_partial`` (true on every row when a
        patch failed or left rows without a result). Written as Parquet only: the
        calibrated ``output_catalog`` carries the same rows and columns (plus magnitudes)
        as CSV, FITS and Parquet.
    """
    params = section(MergeParams, merge_params, "merge")
    run = section(PatchRunParams, patch_run, "patch_run")
    multi_band = run.enable_multi_band_simultaneous_fitting
    key = merge_key(active_catalog)
    expected = merge.expected_columns(frames.bands, multi_band)
    ok = [r["patch_tag"] for r in fit_run_report["patches"] if r["status"] in ("fitted", "resumed")]
    fits_table = merge.collect_fits(patch_results.read_tables(sorted(ok)), key)
    merged = merge.join_fits(active_catalog, fits_table, key, expected)
    if params.wcs_fits is not None and wcs_reference is None:
        raise ValueError(
            f"merge.wcs_fits is {params.wcs_fits!r} but the dataset wcs_reference is none: "
            "give the file as a run-time parameter (--params merge.wcs_fits=<fits> or the "
            "run config's params), which the catalog entry wcs_reference reads")
    wcs = merge.working_wcs(wcs_snapshot[1], wcs_reference, params.wcs_fits)
    merged = merge.sky_positions(merged, wcs)
    patch_of = merge.assigned_patches(merged, patch_payloads, key)
    merged["patch_tag"] = patch_of
    merged["epsf_tag"] = patch_of.str.slice(0, 7)
    merged["fit_is_reliable"] = merge.reliable(merged)
    merged = status.with_statuses(merged, frames.bands, params.low_snr_threshold, multi_band)
    merge.check_unfitted(merged, set(fit_run_report["failed_patches"]))
    merged = merge.ordered(merged, list(active_catalog.columns))
    merge.log_summary(merged)
    return merged


def count_fit_statuses(merged_catalog: pd.DataFrame) -> pd.DataFrame:
    """Rows per ``fit_status`` (and per ``fit_status_{band}``), every status listed.

    Returns
    -------
    DataFrame
        :func:`phot7dt.pipelines.fitting.status.status_counts`: ``fit_status``,
        ``n_sources`` (``n_{band}`` in single-band mode) and ``meaning``.
    """
    counts = status.status_counts(merged_catalog)
    logger.info("fit status counts:\n%s", status.format_counts(counts))
    return counts


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def plot_patch_fits(
    patches: pd.DataFrame,
    merged_catalog: pd.DataFrame,
    frames: FrameSet,
    bright_mask: tuple[np.ndarray | None, Any],
    patch_models: PatchModels,
    patch_run: dict,
    plotting: dict,
) -> dict[str, Callable[[], Figure]]:
    """Patch overviews and per-source montages as lazily drawn partitions.

    The model and residual panels show the model ``fit_patches`` fitted
    (``patch_models``), not one re-rendered from the catalog.

    ``<tag>/patch_overview`` (unless ``no_patch_overview``) and
    ``<tag>/cutouts/src_<ID>`` for the patch's sources ``cutout_start`` ...
    ``cutout_start + cutout_max_sources`` (unless ``no_cutouts``), for every patch
    (``plotting.detail: full``) or the few with the most unconverged fits (``summary``).
    """
    run = section(PatchRunParams, patch_run, "patch_run")
    if run.no_patch_overview and run.no_cutouts:
        logger.info("patch_run.no_patch_overview and no_cutouts are true: no patch figures")
        return {}
    by_tag = patches.set_index("patch_tag")
    tags = sorted(t for t in merged_catalog["patch_tag"].dropna().unique() if t in by_tag.index)
    if section(PlottingParams, plotting, "plotting").detail == "summary":
        tags = summary_patches(merged_catalog, tags)

    @functools.lru_cache(maxsize=1)
    def view(tag: str):
        row = by_tag.loc[tag]
        return patch_view(roi_box(row), tag, merged_catalog, frames, bright_mask[0], patch_models)

    fitted = merge.fitted(merged_catalog)
    figures: dict[str, Callable[[], Figure]] = {}
    for tag in tags:
        if not run.no_patch_overview:
            figures[f"{tag}/patch_overview"] = functools.partial(_overview, view, tag, run)
        if run.no_cutouts:
            continue
        ids = (
            merged_catalog.loc[fitted & (merged_catalog["patch_tag"] == tag), "ID"]
            .astype(str)
            .tolist()
        )
        stop = None if run.cutout_max_sources is None else run.cutout_start + run.cutout_max_sources
        for source_id in ids[run.cutout_start : stop]:
            figures[f"{tag}/cutouts/src_{_safe(source_id)}"] = functools.partial(
                _montage, view, tag, source_id, run
            )
    logger.info("patch figures: %d to draw", len(figures))
    return figures


def _overview(view, tag: str, run: PatchRunParams) -> Figure:
    return plots.patch_overview(view(tag), tag, run)


def _montage(view, tag: str, source_id: str, run: PatchRunParams) -> Figure:
    current = view(tag)
    matches = current.sources.index[current.sources["ID"] == source_id]
    return plots.source_montage(current, int(matches[0]), run)
