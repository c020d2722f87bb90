"""Wiring of the validate pipeline."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from phot7dt.pipelines.validate.nodes import compute_validation_metrics, match_truth
from phot7dt.pipelines.validate.plots import (
    plot_flux_recovery,
    plot_pull_histograms,
    plot_truth_recovery,
)


def create_pipeline(**kwargs) -> Pipeline:
    """``match_truth`` → ``compute_validation_metrics`` (validation.json) and the figures."""
    return Pipeline(
        [
            Node(
                match_truth,
                ["output_catalog", "validation_truth", "frames", "params:validate"],
                ["validation_sources", "validation_fluxes"],
                name="match_truth",
            ),
            Node(
                compute_validation_metrics,
                [
                    "validation_sources",
                    "validation_fluxes",
                    "output_catalog",
                    "zp_summary",
                    "validation_truth_bands",
                    "catalog_provenance",
                    "params:validate",
                ],
                "validation_metrics",
                name="compute_validation_metrics",
            ),
            Node(
                plot_flux_recovery,
                "validation_fluxes",
                "validation_flux_plots",
                name="plot_flux_recovery",
            ),
            Node(
                plot_pull_histograms,
                "validation_fluxes",
                "validation_pull_plots",
                name="plot_pull_histograms",
            ),
            Node(
                plot_truth_recovery,
                ["validation_sources", "validation_metrics", "params:validate"],
                "validation_recovery_plots",
                name="plot_truth_recovery",
            ),
        ]
    )
