"""Wiring of the gaia_augment pipeline."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from phot7dt.pipelines.gaia_augment.nodes import augment_catalog_with_gaia
from phot7dt.pipelines.gaia_augment.plots import plot_augmentation_overlay


def create_pipeline(**kwargs) -> Pipeline:
    """``augment_catalog_with_gaia`` then its overlay plot."""
    return Pipeline(
        [
            Node(
                func=augment_catalog_with_gaia,
                inputs=[
                    "flagged_catalog",
                    "gaiaxp_synphot",
                    "frames",
                    "params:zp",
                    "params:source_saturation_cut",
                ],
                outputs=["augmented_catalog", "gaia_augment_summary"],
                name="augment_catalog_with_gaia",
            ),
            Node(
                func=plot_augmentation_overlay,
                inputs=["white_stack", "augmented_catalog", "gaia_augment_summary"],
                outputs="gaia_augmentation_overlay",
                name="plot_gaia_augmentation",
            ),
        ]
    )
