"""Wiring of the fitting stage."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from phot7dt.pipelines.fitting.nodes import (
    count_fit_statuses,
    fit_patches,
    merge_fits,
    plot_patch_fits,
)


def create_pipeline(**kwargs) -> Pipeline:
    """``fit_patches`` -> ``merge_fits`` -> ``plot_patch_fits``, ``count_fit_statuses``.

    ``fit_patches`` writes ``patch_results`` (read by ``merge_fits``) and
    ``patch_models`` (the fitted model images the figures draw) patch by patch;
    ``previous_patch_results`` is the same folder as it was before the run (resume).

    A failed patch does not stop the run here: ``phot7dt.hooks.RunHooks``
    ends it with a non-zero exit status after every node has run.
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
                    "previous_patch_results",
                    "params:patch_run",
                    "params:scene",
                    "params:source_saturation_cut",
                    "params:sky_and_artefacts",
                    "params:plotting",
                    "params:report",
                ],
                # a generator: each finished patch is saved while the others run
                outputs=["patch_results", "patch_models", "fit_run_report"],
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
                    "wcs_reference",
                    "frames",
                    "params:patch_run",
                    "params:merge",
                ],
                outputs="merged_catalog",
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
                    "patch_models",
                    "params:patch_run",
                    "params:plotting",
                ],
                outputs="patch_fit_plots",
                name="plot_patch_fits",
                tags=["fitting", "plots"],
            ),
            Node(
                count_fit_statuses,
                inputs="merged_catalog",
                outputs="fit_status_counts",
                name="count_fit_statuses",
                tags=["fitting"],
            ),
        ]
    )
