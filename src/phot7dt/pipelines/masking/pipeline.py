"""Wiring of the masking pipeline."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from phot7dt.pipelines.masking.nodes import build_bright_mask, flag_bright_mask_sources
from phot7dt.pipelines.masking.plots import plot_bright_mask


def create_pipeline(**kwargs) -> Pipeline:
    """``build_bright_mask``, ``flag_bright_mask_sources`` and the mask overlay plot."""
    return Pipeline(
        [
            Node(
                func=build_bright_mask,
                inputs=["white_stack", "white_sigma", "augmented_catalog", "params:bright_mask"],
                outputs=["bright_mask", "bright_detections"],
                name="build_bright_mask",
            ),
            Node(
                func=flag_bright_mask_sources,
                inputs=["augmented_catalog", "bright_mask"],
                outputs="active_catalog",
                name="flag_bright_mask_sources",
            ),
            Node(
                func=plot_bright_mask,
                inputs=["white_stack", "bright_mask", "bright_detections", "active_catalog"],
                outputs="bright_mask_overlay",
                name="plot_bright_mask",
            ),
        ]
    )
