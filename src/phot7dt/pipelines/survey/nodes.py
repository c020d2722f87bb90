"""Nodes of the survey pipeline: check the manifest, run every tile on a dask cluster,
merge the tiles into one survey catalog, report, and fail when a tile failed."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.utils import find_kedro_project

from phot7dt.config import section
from phot7dt.config.survey import SurveyParams
from phot7dt.pipelines.survey.cluster import available_cpus, local_workers, run_jobs, survey_client
from phot7dt.pipelines.survey.manifest import parse_overrides, read_manifest
from phot7dt.pipelines.survey.merge import (
    add_calibrated_fluxes,
    edge_distance,
    mark_primary,
    read_tile_catalog,
    read_zero_points,
    stack_tiles,
)
from phot7dt.pipelines.survey.qa import overlap_agreement, survey_report_html, zero_point_figure
from phot7dt.pipelines.survey.tile_run import THREAD_VARS, TileJob, finished_run
from phot7dt.plotting import Figure

logger = logging.getLogger(__name__)

RUN_COLUMNS = [
    "tile",
    "status",
    "attempts",
    "returncode",
    "seconds",
    "host",
    "error",
    "work_dir",
    "log",
]
INPUT_COLUMNS = ("input_catalog", "image_list", "gaiaxp_synphot")


class SurveyTileFailure(RuntimeError):
    """Some tiles failed; the survey catalog and report of the other tiles were written."""


def _params(survey: Mapping[str, Any] | SurveyParams) -> SurveyParams:
    return section(SurveyParams, survey, "survey")


def load_manifest(survey: Mapping[str, Any]) -> pd.DataFrame:
    """The checked survey manifest (:func:`~phot7dt.pipelines.survey.manifest.read_manifest`)."""
    table = read_manifest(_params(survey).manifest)
    logger.info("survey: %d tile(s) in %s", len(table), _params(survey).manifest)
    return table


def _overrides(row: pd.Series, params: SurveyParams, work_dir: Path, patch_workers) -> str:
    items = [] if patch_workers is None else [("patch_run.max_workers", str(patch_workers))]
    items += parse_overrides(params.tile_params, "survey.tile_params")
    items += parse_overrides(row["params"], f"survey manifest, tile {row['tile']}, params")
    items += [(name, row[name]) for name in INPUT_COLUMNS] + [("work_dir", str(work_dir))]
    return ",".join(f"{key}={value}" for key, value in items)


def tile_job(
    row: pd.Series, params: SurveyParams, root: Path, patch_workers: int | None, threads: int | None
) -> TileJob:
    """The job of one manifest row: ``kedro run --pipeline full`` into ``root/tiles/<tile>``."""
    work_dir = root / "tiles" / row["tile"]
    args = [
        "run",
        "--pipeline",
        "full",
        "--params",
        _overrides(row, params, work_dir, patch_workers),
    ]
    if params.tile_env:
        args += ["--env", params.tile_env]
    project = find_kedro_project(Path.cwd()) or Path.cwd()
    return TileJob(
        tile=row["tile"],
        kedro_args=tuple(args),
        project_dir=str(project),
        work_dir=str(work_dir),
        log_path=str(root / "survey" / "logs" / f"{row['tile']}.log"),
        env={} if threads is None else dict.fromkeys(THREAD_VARS, str(threads)),
    )


def _skipped(job: TileJob) -> dict[str, Any]:
    return {
        "tile": job.tile,
        "status": "skipped",
        "attempts": 0,
        "error": "",
        "work_dir": job.work_dir,
        "log": job.log_path,
    }


def run_tiles(
    survey_tiles: pd.DataFrame, survey: Mapping[str, Any], survey_root: str
) -> pd.DataFrame:
    """Run every tile's full pipeline as one task on a dask.distributed cluster.

    With ``survey.resume`` a tile whose ``run_manifest.json`` says ``finished`` (for the
    same inputs) is skipped. On the ``local`` cluster each of the ``n_workers`` workers
    runs one tile at a time with ``CPUs / n_workers`` patch workers and BLAS threads.

    Returns
    -------
    pandas.DataFrame
        One row per tile in manifest order: ``tile``, ``status`` (finished / skipped /
        failed), ``attempts``, ``returncode``, ``seconds``, ``host``, ``error``,
        ``work_dir``, ``log``.
    """
    params = _params(survey)
    root = Path(survey_root).expanduser().absolute()
    local = params.scheduler == "local"
    n_workers = local_workers(params.n_workers, len(survey_tiles)) if local else 0
    per_worker = max(1, available_cpus() // n_workers) if local else None
    patch_workers = params.patch_workers or per_worker
    jobs, records = [], []
    for _, row in survey_tiles.iterrows():
        job = tile_job(row, params, root, patch_workers, per_worker)
        inputs = {name: row[name] for name in INPUT_COLUMNS}
        if params.resume and finished_run(job.work_dir, inputs):
            records.append(_skipped(job))
        else:
            jobs.append(job)
    logger.info("survey: %d tile(s) to run, %d finished before", len(jobs), len(records))
    if jobs:
        with survey_client(params.scheduler, n_workers) as client:
            for outcome in run_jobs(client, jobs, params.retries):
                records.append(outcome)
                level = logging.INFO if outcome["status"] == "finished" else logging.ERROR
                logger.log(
                    level,
                    "survey: tile %s %s (%d/%d) %s",
                    outcome["tile"],
                    outcome["status"],
                    len(records),
                    len(survey_tiles),
                    outcome["error"],
                )
    order = {tile: k for k, tile in enumerate(survey_tiles["tile"])}
    records.sort(key=lambda r: order[r["tile"]])
    return pd.DataFrame(records).reindex(columns=RUN_COLUMNS)


def _tile_rows(tile: str, work_dir: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    zero_points = read_zero_points(work_dir)
    table = add_calibrated_fluxes(read_tile_catalog(work_dir), zero_points)
    table.insert(0, "TILE", tile)
    table["survey_edge_dist_pix"] = edge_distance(work_dir, table["RA"], table["DEC"])
    return table, zero_points.assign(tile=tile)


def merge_tiles(
    survey_tile_runs: pd.DataFrame, survey: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The survey catalog of the finished and skipped tiles, and their zero points.

    Returns
    -------
    tuple
        The catalog three times (CSV, Parquet, FITS outputs): every row of every tile with
        ``TILE``, ``ZP_{band}``/``ZPERR_{band}`` (mag), ``FLUX[ERR]_{band}_uJy``,
        ``survey_edge_dist_pix`` (px inside the usable area), ``survey_source``,
        ``survey_n_meas`` and ``survey_primary``; then the zero points (``tile``,
        ``band``, ``zp``, ``zp_err``).
    """
    params = _params(survey)
    done = survey_tile_runs[survey_tile_runs["status"].isin(["finished", "skipped"])]
    parts = [_tile_rows(r["tile"], r["work_dir"]) for _, r in done.iterrows()]
    if not parts:
        empty = pd.DataFrame(columns=["TILE", "ID", "RA", "DEC", "survey_primary"])
        zps = pd.DataFrame(columns=["tile", "band", "zp", "zp_err"])
        return empty, empty, empty, zps
    catalog = mark_primary(stack_tiles([p[0] for p in parts]), params.match_radius_arcsec)
    zero_points = pd.concat([p[1] for p in parts], ignore_index=True)[
        ["tile", "band", "zp", "zp_err"]
    ]
    return catalog, catalog, catalog, zero_points


def assess_overlaps(survey_catalog: pd.DataFrame) -> pd.DataFrame:
    """Flux agreement of the sources measured by several tiles, per band
    (:func:`~phot7dt.pipelines.survey.qa.overlap_agreement`)."""
    if survey_catalog.empty:
        return overlap_agreement(survey_catalog.assign(survey_primary=[]))
    table = overlap_agreement(survey_catalog)
    for row in table.itertuples():
        logger.info(
            "survey overlaps %s: %d pairs, pull median %.2f std %.2f",
            row.band,
            row.n_pairs,
            row.pull_median,
            row.pull_std,
        )
    return table


def plot_survey_zero_points(survey_zero_points: pd.DataFrame) -> Figure:
    """Zero point per tile and band (``survey/zp_per_tile.png``)."""
    return zero_point_figure(survey_zero_points)


def write_survey_report(
    survey_tile_runs: pd.DataFrame,
    survey_zero_points: pd.DataFrame,
    survey_catalog: pd.DataFrame,
    survey_overlaps: pd.DataFrame,
    survey_root: str,
) -> str:
    """``survey/survey_report.html``: tiles, zero points, primary counts, overlaps."""
    folder = Path(survey_root).expanduser().absolute() / "survey"
    return survey_report_html(
        survey_tile_runs, survey_zero_points, survey_catalog, survey_overlaps, folder
    )


def check_tile_runs(survey_tile_runs: pd.DataFrame, survey_report: str) -> None:
    """End the survey with an error naming every failed tile (after everything was written).

    Raises
    ------
    SurveyTileFailure
        When a tile's run failed or its task was lost.
    """
    failed = survey_tile_runs[survey_tile_runs["status"] == "failed"]
    if len(failed):
        detail = "; ".join(f"{r.tile}: {r.error}" for r in failed.itertuples())
        raise SurveyTileFailure(
            f"{len(failed)} of {len(survey_tile_runs)} tile(s) failed ({detail}); the survey "
            "catalog holds the other tiles; rerun with survey.resume=true after fixing them"
        )
