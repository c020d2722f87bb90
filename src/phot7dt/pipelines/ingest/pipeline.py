"""Ingest pipeline: validated catalog, frames, white stack, source flags, plots."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from phot7dt.pipelines.ingest.nodes import (
    build_white_stack,
    check_frames,
    flag_sources,
    load_input_catalog,
    prepare_frames,
    write_wcs_snapshot,
)
from phot7dt.pipelines.ingest.plots import plot_source_overlay, plot_white_stack


def create_pipeline(**kwargs) -> Pipeline:
    """The ingest stage; node names are what users type (``--from-nodes flag_sources``)."""
    return Pipeline(
        [
            Node(
                load_input_catalog,
                ["input_catalog_raw", "params:input_catalog"],
                "input_catalog",
                name="load_input_catalog",
            ),
            Node(
                prepare_frames,
                [
                    "raw_frames",
                    "params:image_scaling",
                    "params:crop",
                    "params:source_saturation_cut",
                ],
                "prepared_frames",
                name="prepare_frames",
            ),
            Node(
                check_frames,
                ["prepared_frames", "raw_frames", "input_catalog", "params:checks"],
                "frames",
                name="check_frames",
            ),
            Node(
                build_white_stack,
                ["frames", "params:performance"],
                ["white_stack", "white_sigma"],
                name="build_white_stack",
            ),
            Node(
                flag_sources,
                ["input_catalog", "frames", "params:source_saturation_cut"],
                "flagged_catalog",
                name="flag_sources",
            ),
            Node(write_wcs_snapshot, "frames", "wcs_snapshot", name="write_wcs_snapshot"),
            Node(
                plot_white_stack,
                ["frames", "white_stack", "params:crop", "params:plotting"],
                ["white_before_crop_plot", "white_after_crop_plot"],
                name="plot_white_stack",
            ),
            Node(
                plot_source_overlay,
                ["white_stack", "flagged_catalog", "params:crop", "params:plotting"],
                "source_overlay_plot",
                name="plot_source_overlay",
            ),
        ]
    )
