"""Wiring of the psf stage."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from phot7dt.pipelines.psf.nodes import build_epsf, plot_epsf_qa


def create_pipeline(**kwargs) -> Pipeline:
    """``build_epsf`` (ePSF grid, PSF choice, summary) then ``plot_epsf_qa``."""
    return Pipeline(
        [
            Node(
                build_epsf,
                inputs=["frames", "flagged_catalog", "gaiaxp_synphot", "params:epsf",
                        "params:patch_run", "params:moffat_psf", "params:plotting"],
                outputs=["epsf_grid", "epsf_summary", "epsf_qa"],
                name="build_epsf",
                tags=["psf"],
            ),
            Node(
                plot_epsf_qa,
                inputs=["epsf_grid", "epsf_qa", "params:epsf", "params:plotting"],
                outputs="epsf_plots",
                name="plot_epsf_qa",
                tags=["psf", "plots"],
            ),
        ]
    )
