"""Wiring of the report pipeline."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from phot7dt.pipelines.report.nodes import (
    REPORT_FIGURES,
    build_report,
    plot_patch_overview,
    plot_residual_montage,
    summarise_run,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Residual montage and patch overview, the run summary, then ``report.html``.

    ``build_report`` reads the figures of the other stages as catalog datasets
    (``phot7dt.pipelines.report.nodes.REPORT_FIGURES``).
    """
    return Pipeline(
        [
            Node(
                plot_residual_montage,
                ["output_catalog", "frames", "patch_models", "params:report"],
                "residual_montage_plot",
                name="plot_residual_montage",
            ),
            Node(
                plot_patch_overview,
                ["white_stack", "patches", "params:report"],
                "patch_overview_plot",
                name="plot_patch_overview",
            ),
            Node(
                summarise_run,
                [
                    "output_catalog",
                    "zp_summary",
                    "fit_run_report",
                    "validation_metrics",
                    "catalog_provenance",
                ],
                "run_summary",
                name="summarise_run",
            ),
            Node(
                build_report,
                # every figure the page may embed is a declared input (lineage in kedro viz)
                {
                    "run_summary": "run_summary",
                    "report": "params:report",
                    **{name: name for name in REPORT_FIGURES},
                },
                "report_html",
                name="build_report",
            ),
        ]
    )
