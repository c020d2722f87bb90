"""Calibration pipeline: zero points from GaiaXP stars, AB magnitudes, ZP plots."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .export import export_catalog
from .nodes import (
    apply_zero_points,
    compute_zero_points,
    plot_zero_point_offsets,
    plot_zero_points,
)


def create_pipeline(**kwargs) -> Pipeline:
    """``compute_zero_points`` → ``apply_zero_points`` → ``export_catalog``, plus the ZP
    diagnostic plots."""
    return Pipeline([
        Node(
            compute_zero_points,
            inputs=["merged_catalog", "gaiaxp_synphot", "frames", "params:zp"],
            outputs=["zp_summary", "zp_per_object"],
            name="compute_zero_points",
        ),
        Node(
            apply_zero_points,
            inputs=["merged_catalog", "zp_summary"],
            outputs="output_catalog",
            name="apply_zero_points",
        ),
        Node(
            export_catalog,
            inputs=["output_catalog", "zp_summary", "run_provenance", "params:image_scaling"],
            outputs=[
                "output_catalog_fits",
                "output_catalog_parquet",
                "catalog_provenance",
                "run_parameters",
            ],
            name="export_catalog",
        ),
        Node(
            plot_zero_points,
            inputs=["zp_per_object", "zp_summary", "params:zp", "params:plotting"],
            outputs="zp_band_plots",
            name="plot_zero_points",
        ),
        Node(
            plot_zero_point_offsets,
            inputs="zp_summary",
            outputs="zp_offset_plot",
            name="plot_zero_point_offsets",
        ),
    ])
