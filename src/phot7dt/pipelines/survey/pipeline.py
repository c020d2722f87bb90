"""Wiring of the survey pipeline."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from phot7dt.pipelines.survey.nodes import (
    assess_overlaps,
    check_tile_runs,
    load_manifest,
    merge_tiles,
    plot_survey_zero_points,
    run_tiles,
    write_survey_report,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Manifest, tile runs on dask, merged survey catalog, zero points, overlaps, report."""
    return Pipeline(
        [
            Node(load_manifest, "params:survey", "survey_tiles", name="load_manifest"),
            Node(
                run_tiles,
                ["survey_tiles", "params:survey", "params:survey_root"],
                "survey_tile_runs",
                name="run_tiles",
            ),
            Node(
                merge_tiles,
                ["survey_tile_runs", "params:survey"],
                [
                    "survey_catalog",
                    "survey_catalog_parquet",
                    "survey_catalog_fits",
                    "survey_zero_points",
                ],
                name="merge_tiles",
            ),
            Node(assess_overlaps, "survey_catalog", "survey_overlaps", name="assess_overlaps"),
            Node(
                plot_survey_zero_points,
                "survey_zero_points",
                "survey_zp_plot",
                name="plot_survey_zero_points",
            ),
            Node(
                write_survey_report,
                [
                    "survey_tile_runs",
                    "survey_zero_points",
                    "survey_catalog",
                    "survey_overlaps",
                    "params:survey_root",
                ],
                "survey_report",
                name="write_survey_report",
            ),
            Node(
                check_tile_runs,
                ["survey_tile_runs", "survey_report"],
                None,
                name="check_tile_runs",
            ),
        ]
    )
