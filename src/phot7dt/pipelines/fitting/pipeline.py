"""Wiring of the fitting stage."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from phot7dt.pipelines.fitting.nodes import (
    check_patch_failures,
    fit_patches,
    merge_fits,
    plot_patch_fits,
)


def create_pipeline(**kwargs) -> Pipeline:
    """``fit_patches`` -> ``merge_fits`` -> ``plot_patch_fits``, ``check_patch_failures``.

    ``check_patch_failures`` raises (non-zero exit) after the merge when a patch failed.
    """
    return Pipeline(
        [
            Node(
                fit_patches,
                inputs=[
                    "patches",
                    "patch_payloads",
                    "frames",
                    "bright_mask",
                    "epsf_grid",
                    "patch_results",
                    "params:patch_run",
                    "params:scene",
                ],
                outputs="fit_run_report",
                name="fit_patches",
                tags=["fitting"],
            ),
            Node(
                merge_fits,
                inputs=[
                    "active_catalog",
                    "patch_payloads",
                    "patch_results",
                    "fit_run_report",
                    "wcs_snapshot",
                    "frames",
                    "params:patch_run",
                    "params:merge",
                ],
                outputs=["merged_catalog", "merged_catalog_csv", "merged_catalog_fits"],
                name="merge_fits",
                tags=["fitting"],
            ),
            Node(
                plot_patch_fits,
                inputs=[
                    "patches",
                    "merged_catalog",
                    "frames",
                    "bright_mask",
                    "epsf_grid",
                    "params:patch_run",
                ],
                outputs="patch_fit_plots",
                name="plot_patch_fits",
                tags=["fitting", "plots"],
            ),
            Node(
                check_patch_failures,
                inputs=["fit_run_report", "merged_catalog"],
                outputs=None,
                name="check_patch_failures",
                tags=["fitting"],
            ),
        ]
    )
