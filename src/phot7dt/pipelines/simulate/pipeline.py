"""Wiring of the simulate pipeline."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from phot7dt.pipelines.simulate.nodes import (
    build_sim_catalog,
    build_sim_gaiaxp,
    build_sim_truth,
    draw_sim_bands,
    draw_sim_defects,
    draw_sim_sources,
    simulate_field,
)
from phot7dt.pipelines.simulate.plots import plot_sim_quicklook
from phot7dt.pipelines.simulate.survey import simulate_survey


def create_pipeline(**kwargs) -> Pipeline:
    """Bands, sources, defects, images (``simulate_field``), catalog, GaiaXP, truth, quick look."""
    return Pipeline(
        [
            Node(draw_sim_bands, "params:simulate", "sim_truth_bands", name="draw_sim_bands"),
            Node(
                draw_sim_sources,
                ["sim_truth_bands", "params:simulate"],
                "sim_sources",
                name="draw_sim_sources",
            ),
            Node(
                draw_sim_defects,
                ["sim_truth_bands", "params:simulate"],
                "sim_truth_defects",
                name="draw_sim_defects",
            ),
            Node(
                simulate_field,
                ["sim_sources", "sim_truth_bands", "params:simulate", "sim_truth_defects"],
                "sim_images",
                name="simulate_field",
            ),
            Node(
                build_sim_truth,
                ["sim_sources", "sim_truth_bands", "params:simulate"],
                "sim_truth",
                name="build_sim_truth",
            ),
            Node(
                build_sim_catalog,
                ["sim_sources", "params:simulate"],
                "sim_catalog",
                name="build_sim_catalog",
            ),
            Node(
                build_sim_gaiaxp,
                ["sim_sources", "params:simulate"],
                "sim_gaiaxp",
                name="build_sim_gaiaxp",
            ),
            Node(
                plot_sim_quicklook,
                ["sim_images", "sim_truth"],
                "sim_quicklook",
                name="plot_sim_quicklook",
            ),
        ]
    )


def create_survey_pipeline(**kwargs) -> Pipeline:
    """``simulate_survey``: overlapping tiles on one sky and their manifest ``tiles.csv``."""
    return Pipeline(
        [
            Node(
                simulate_survey,
                ["params:simulate", "params:simulate_survey", "params:survey_dir"],
                "sim_survey_manifest",
                name="simulate_survey",
            )
        ]
    )
